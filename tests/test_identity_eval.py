"""Identity quality on the labelled evaluation set (tests/evalset.py), against the goals.

Run `python -m tests.evalset --people N` to print the full table for a larger set.
"""

import sqlite3
from pathlib import Path

from tests.evalset import evaluate_duplicates, evaluate_lookup

PEOPLE = 2000


def test_lookup_never_attaches_the_wrong_customer_and_finds_the_right_one(tmp_path: Path) -> None:
    scores = evaluate_lookup(PEOPLE, tmp_path)
    print({kind: str(s) for kind, s in scores.items()})
    overall = scores["all"]
    assert overall.tp > 1500  # the set really exercised lookups
    assert overall.precision == 1.0, overall  # a contact-level match is the caller themselves, every time
    assert overall.recall >= 0.98, overall
    for kind in ("shared line, caller ID only", "switchboard, caller ID only", "namesake, name only", "new caller"):
        assert scores[kind].fp == 0, (kind, scores[kind])  # nobody may be attached
    assert scores["account: all"].fp == 0, scores["account: all"]  # never another account's record


def test_duplicate_finding_meets_the_precision_and_recall_goals(tmp_path: Path) -> None:
    scores = evaluate_duplicates(PEOPLE, tmp_path)
    print({kind: str(s) for kind, s in scores.items()})
    assert scores["all"].tp > 500
    assert scores["all"].precision >= 0.999, scores["all"]
    assert scores["sharing a phone or e-mail"].recall >= 0.99, scores["sharing a phone or e-mail"]
    assert scores["all"].recall >= 0.98, scores["all"]  # every duplicate here differs only by the listed variants
    assert scores["account: all"].precision == 1.0, scores["account: all"]  # a household's records, no stranger's
    # records of one household (spouses on its line, colleagues behind its switchboard) are one account's duplicates
    assert scores["account: sharing a phone or e-mail"].recall >= 0.99, scores["account: sharing a phone or e-mail"]


def test_candidates_read_for_a_query_score_as_their_full_profiles_do(tmp_path: Path) -> None:
    """A lookup reads only the parts of a candidate its query can compare (a caller ID alone
    needs numbers, not addresses); across every kind of query that must not change a score."""
    from fsm_mcp.directory.customers import load_profiles
    from fsm_mcp.identity.keys import query_keys
    from fsm_mcp.identity.query import caller_profile
    from fsm_mcp.identity.scoring import score
    from fsm_mcp.inputs import parse_address
    from tests.evalset import _load, build

    g, queries = build(400, duplicate_share=0.3)
    db, business, _ = _load(g.records, tmp_path, "parts")
    def compare(conn: sqlite3.Connection) -> int:
        compared = 0
        for q in queries:
            args = dict(q.args)
            address = parse_address(args.pop("address")) if "address" in args else None
            query = caller_profile(address=address, region="US", **args)
            ids = sorted({cid for key in query_keys(query) for (cid,) in conn.execute(
                "SELECT customer_id FROM match_keys WHERE tenant_id=? AND key=?", (business.tenant_id, key))})
            full, narrowed = load_profiles(conn, business.tenant_id, ids), load_profiles(conn, business.tenant_id, ids, query)
            assert full.keys() == narrowed.keys()
            for cid in full:
                assert score(query, narrowed[cid], cid, {}) == score(query, full[cid], cid, {}), (q.kind, q.args)
                compared += 1
        return compared

    compared = db.snapshot(compare)
    db.close()
    assert compared > 500 and len({q.kind for q in queries}) > 5
