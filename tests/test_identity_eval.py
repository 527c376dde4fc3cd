"""Identity quality on the labelled evaluation set (tests/evalset.py), against the goals.

Run `python -m tests.evalset --people N` to print the full table for a larger set.
"""

from pathlib import Path

from tests.evalset import evaluate_duplicates, evaluate_lookup

PEOPLE = 2000


def test_lookup_never_attaches_the_wrong_customer_and_finds_the_right_one(tmp_path: Path) -> None:
    scores = evaluate_lookup(PEOPLE, tmp_path)
    print({kind: str(s) for kind, s in scores.items()})
    overall = scores["all"]
    assert overall.tp > 1500  # the set really exercised lookups
    assert overall.precision >= 0.999, overall
    assert overall.recall >= 0.98, overall
    for kind in ("shared line, caller ID only", "switchboard, caller ID only", "namesake, name only", "new caller"):
        assert scores[kind].fp == 0, (kind, scores[kind])  # nobody may be attached


def test_duplicate_finding_meets_the_precision_and_recall_goals(tmp_path: Path) -> None:
    scores = evaluate_duplicates(PEOPLE, tmp_path)
    print({kind: str(s) for kind, s in scores.items()})
    assert scores["all"].tp > 500
    assert scores["all"].precision >= 0.999, scores["all"]
    assert scores["sharing a phone or e-mail"].recall >= 0.99, scores["sharing a phone or e-mail"]
    assert scores["all"].recall >= 0.98, scores["all"]  # every duplicate here differs only by the listed variants
