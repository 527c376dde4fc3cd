"""Why true duplicate pairs of Febrl data are not reported `exact`/`likely`: one line per miss.

    python benchmarks/identity_misses.py [--data ../shared/data/febrl-dev] [--file dataset1.csv] [--show 40]

Imports the file as `identity_eval.py` does, then for each true pair (same entity) that
duplicate finding did not link at `likely` or better, says which stage stopped it:
`no shared key` (blocking never paired them), or the pair's band by weight, the band it
got, the rule that capped it, and its field levels with their weights. Ends with counts
per cause, and false links (if any) the same way.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fsm_mcp.directory import identity_model
from fsm_mcp.directory.customers import load_profiles
from fsm_mcp.directory.duplicates import _blocks
from fsm_mcp.identity import duplicates, scoring
from fsm_mcp.identity.compare import compare
from fsm_mcp.importer import import_customers
from fsm_mcp.settings import Business
from fsm_mcp.store.db import Database


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "febrl-dev")
    ap.add_argument("--file", default="dataset1.csv")
    ap.add_argument("--show", type=int, default=40)
    a = ap.parse_args()
    rows = [{k.strip(): (v or "").strip() for k, v in r.items()}
            for r in csv.DictReader((a.data / a.file).open(), skipinitialspace=True)]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "in.csv"
        with out.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["external_id", "name", "street", "unit", "city", "state", "postal_code"])
            for r in rows:
                w.writerow([r["rec_id"], f"{r['given_name']} {r['surname']}".strip(),
                            f"{r['street_number']} {r['address_1']}".strip(), r["address_2"], r["suburb"], r["state"],
                            r["postcode"]])
        db = Database(Path(tmp) / "in.db")
        business = Business()
        import_customers(db, business, out)
        tenant = business.tenant_id

        def work(conn):  # type: ignore[no-untyped-def]
            ids = dict(conn.execute("SELECT external_id, id FROM customers").fetchall())
            blocks = list(_blocks(conn, tenant))
            pairs = duplicates.candidate_pairs(blocks)
            model = identity_model.load(conn, tenant)
            profiles = load_profiles(conn, tenant, sorted(ids.values()))
            return ids, pairs, model, profiles

        ids, pairs, model, profiles = db.read(work)
        db.close()
    by: dict[str, list[str]] = {}
    for r in rows:
        if r["rec_id"] in ids:
            by.setdefault(r["rec_id"].split("-")[1], []).append(ids[r["rec_id"]])
    ext = {v: k for k, v in ids.items()}
    truth = {tuple(sorted(p)) for group in by.values() for p in itertools.combinations(group, 2)}
    causes: Counter[str] = Counter()
    lines = []
    linked = set()
    for x, y in sorted(truth | pairs):
        found = compare(profiles[x], profiles[y], {}, model.total)
        weight = model.total(found.levels, 1, found.values)
        verdict = scoring._confidence(model, weight, found)
        band, caveat = (verdict.confidence, verdict.caveat) if verdict else (None, None)
        bands = model.bands_for()
        by_weight = next((b for b in ("exact", "likely", "possible") if weight >= bands[b]), None)
        hit = band in ("exact", "likely")
        true = (x, y) in truth
        if hit and (x, y) in pairs:
            linked.add((x, y))
        if true and hit and (x, y) in pairs:
            continue
        if not true and not (hit and (x, y) in pairs):
            continue
        if not true:
            cause = "FALSE LINK"
        elif (x, y) not in pairs:
            cause = "no shared key"
        elif caveat and band not in ("exact", "likely"):
            cause = "capped: " + caveat.split(":")[0].split(";")[0]
        else:
            cause = f"weight {by_weight or 'below possible'}"
        causes[cause] += 1
        detail = ", ".join(f"{f}={lv}({model.weight(f, lv, 1, found.values.get(f)):+.1f})" for f, lv in found.levels.items())
        lines.append(f"{cause:>40} | {weight:5.1f} | {profiles[x].name_raw} / {profiles[y].name_raw} | "
                     f"{found.said.get('address', '')} | {detail} | {ext[x]} {ext[y]}")
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for x, y in linked:
        parent[root(x)] = root(y)
    grouped = {p for p in truth if root(p[0]) == root(p[1])}
    for line in lines[: a.show]:
        print(line)
    tp = len(linked & truth)
    print(f"\n{a.file}: true pairs {len(truth)}, linked {len(linked)}, recall {tp / max(1, len(truth)):.4f}, "
          f"precision {tp / max(1, len(linked)):.4f}; in one group (as reported): recall {len(grouped) / max(1, len(truth)):.4f}")
    for cause, n in causes.most_common():
        print(f"  {n:5d}  {cause}")


if __name__ == "__main__":
    main()
