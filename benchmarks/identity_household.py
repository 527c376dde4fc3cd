"""What the household rule costs and saves: duplicate finding with and without it, in one run.

    python benchmarks/identity_household.py [--data ../shared/data/febrl-dev] [--people 3000]

The rules (scoring._confidence): a name that differs makes a pair at most `likely` and at the
account level (another person of the household) where the house or a line is shared; where
neither name agrees, or one name and part of the address differ, a phone or e-mail that differs
keeps it `possible` or out, and with none to compare the rest of the address decides. Public
Febrl data (no phones, no e-mails) labels a record whose given name or surname was replaced
outright as the same entity; the project's own evaluation set holds real households (spouses on
one line, colleagues behind a switchboard) and look-alikes with lines of their own. Prints
precision and recall of exact/likely pairs (at the person level for the evaluation set) with the
rules, without them (the bands by weight alone), and with them only where a line is shared.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fsm_mcp.directory.duplicates import find
from fsm_mcp.identity import scoring
from fsm_mcp.importer import import_customers
from fsm_mcp.settings import Business
from fsm_mcp.store.db import Database
from tests.evalset import evaluate_duplicates

RULED = scoring._confidence


def unruled(model, weight, found):  # type: ignore[no-untyped-def]
    """The bands by weight alone, keeping only 'exact means nothing contradicts'."""
    bands = model.bands_for()
    level = next((b for b in ("exact", "likely", "possible") if weight >= bands[b]), None)
    if level == "exact" and "different" in found.levels.values():
        level = "likely"
    return scoring.Verdict(level) if level else None


def on_shared_line_only(model, weight, found):  # type: ignore[no-untyped-def]
    """The rule only where a phone or e-mail is shared: a base with names and addresses alone links
    two given names at one house (what Febrl's labels want, and what would merge real spouses)."""
    if found.levels.get("phone") == "exact" or found.levels.get("email") == "exact":
        return RULED(model, weight, found)
    return unruled(model, weight, found)


def febrl(path: Path, folder: Path) -> tuple[float, float]:
    rows = [{k.strip(): (v or "").strip() for k, v in r.items()} for r in csv.DictReader(path.open(), skipinitialspace=True)]
    out = folder / f"{path.stem}.csv"
    with out.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["external_id", "name", "street", "unit", "city", "state", "postal_code"])
        for r in rows:
            w.writerow([r["rec_id"], f"{r['given_name']} {r['surname']}".strip(),
                        f"{r['street_number']} {r['address_1']}".strip(), r["address_2"], r["suburb"], r["state"], r["postcode"]])
    db = Database(folder / f"{path.stem}-{id(scoring._confidence)}.db")
    import_customers(db, Business(), out)
    report = db.read(find, "default", "likely", 10**9)
    db.close()
    entity = {r["rec_id"]: r["rec_id"].split("-")[1] for r in rows if r["given_name"] or r["surname"]}
    by: dict[str, list[str]] = {}
    for rec, e in entity.items():
        by.setdefault(e, []).append(rec)
    truth = {frozenset(p) for ids in by.values() for p in itertools.combinations(ids, 2)}
    found = {frozenset(p) for g in report.groups
             for p in itertools.combinations([m.external_id for m in g.members if m.external_id], 2)}
    tp = len(truth & found)
    return tp / max(1, len(found)), tp / max(1, len(truth))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "febrl-dev")
    ap.add_argument("--people", type=int, default=3000)
    a = ap.parse_args()
    for label, rule in (("household rule on ", RULED), ("household rule off", unruled),
                        ("rule on shared lines only", on_shared_line_only)):
        scoring._confidence = rule
        with tempfile.TemporaryDirectory() as tmp:
            parts = []
            for name in ("dataset2.csv", "dataset1.csv"):
                if (a.data / name).exists():
                    p, r = febrl(a.data / name, Path(tmp))
                    parts.append(f"Febrl {name}: precision {p:.4f} recall {r:.4f}")
            own = evaluate_duplicates(a.people, Path(tmp))["all"]
            parts.append(f"own evaluation set: precision {own.precision:.4f} recall {own.recall:.4f} (fp {own.fp})")
        print(f"{label}: " + "; ".join(parts))
    scoring._confidence = RULED


if __name__ == "__main__":
    main()
