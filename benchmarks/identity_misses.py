"""Why true duplicate pairs of Febrl data are not reported `exact`/`likely`: one line per miss.

    python benchmarks/identity_misses.py [--data ../shared/data/febrl-dev] [--file dataset1.csv] [--show 40]
    python benchmarks/identity_misses.py --lookup [--file dataset1.csv] [--seed 20261121]

Imports the file as `identity_eval.py` does, then for each true pair (same entity) that
duplicate finding did not link at `likely` or better, says which stage stopped it:
`no shared key` (blocking never paired them), or the pair's band by weight, the band it
got, the rule that capped it, and its field levels with their weights. Ends with counts
per cause, and false links (if any) the same way. Only pairs the report leaves in separate
groups are counted (a pair joined through a third record is found).

With --lookup: the lookups `identity_eval.py` makes (the originals less a seeded 20 % on
file, every duplicate looked up by name and address), in process; one line per missed,
wrong or falsely attached caller with its top match, then counts per cause.
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
    ap.add_argument("--lookup", action="store_true")
    ap.add_argument("--seed", type=int, default=20261121, help="which originals are left off the file (--lookup)")
    a = ap.parse_args()
    rows = [{k.strip(): (v or "").strip() for k, v in r.items()}
            for r in csv.DictReader((a.data / a.file).open(), skipinitialspace=True)]
    if a.lookup:
        lookups(rows, a.show, a.seed)
        return
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
            return ids, pairs, model, profiles, blocks

        ids, pairs, model, profiles, blocks = db.read(work)
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
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    links = duplicates.link(pairs, profiles, duplicates.phone_owners(blocks), "likely", model=model)
    for edge in links:
        parent[root(edge.a)] = root(edge.b)
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
        if true and root(x) == root(y):
            continue  # joined through another record
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
    grouped = {p for p in truth if root(p[0]) == root(p[1])}
    for line in lines[: a.show]:
        print(line)
    tp = len(linked & truth)
    print(f"\n{a.file}: true pairs {len(truth)}, linked {len(linked)}, recall {tp / max(1, len(truth)):.4f}, "
          f"precision {tp / max(1, len(linked)):.4f}; in one group (as reported): recall {len(grouped) / max(1, len(truth)):.4f}")
    for cause, n in causes.most_common():
        print(f"  {n:5d}  {cause}")


def lookups(rows: list[dict[str, str]], show: int, seed: int) -> None:
    import random

    import anyio

    from fsm_mcp.connectors.local import LocalBackend
    from fsm_mcp.directory.customers import lookup
    from fsm_mcp.identity.query import caller_profile
    from fsm_mcp.inputs import parse_address

    originals = [r for r in rows if r["rec_id"].endswith("-org")]
    queries = [r for r in rows if "-dup-" in r["rec_id"]]
    rnd = random.Random(seed)
    kept = [r for r in originals if rnd.random() >= 0.2]
    by_id = {r["rec_id"]: r for r in rows}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "in.csv"
        with out.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["external_id", "name", "street", "unit", "city", "state", "postal_code"])
            for r in kept:
                w.writerow([r["rec_id"], f"{r['given_name']} {r['surname']}".strip(),
                            f"{r['street_number']} {r['address_1']}".strip(), r["address_2"], r["suburb"], r["state"],
                            r["postcode"]])
        db = Database(Path(tmp) / "in.db")
        business = Business()
        import_customers(db, business, out)
        tenant = business.tenant_id
        ext = dict(db.read(lambda conn: conn.execute("SELECT id, external_id FROM customers").fetchall()))
        on_file = {r["rec_id"].split("-")[1]: r["rec_id"] for r in kept if r["given_name"] or r["surname"]}
        backend = LocalBackend(db, business)
        causes: Counter[str] = Counter()
        lines = []

        async def run() -> None:
            for q in queries:
                address = ", ".join(x for x in [f"{q['street_number']} {q['address_1']}".strip(), q["address_2"],
                                                q["suburb"], q["state"], q["postcode"]] if x)
                name = f"{q['given_name']} {q['surname']}".strip()
                query = caller_profile(name=name or None, address=parse_address(address) if address else None)
                found = await backend.lookup_customers(query, 5)
                top = found.matches[0] if found.matches else None
                confident = top is not None and top.confidence in ("exact", "likely")
                target = on_file.get(q["rec_id"].split("-")[1])
                got = ext[top.customer_id] if top else None
                if target is None:
                    if not confident:
                        continue
                    cause = "FALSE ATTACH"
                elif confident and got == target:
                    continue
                elif confident:
                    cause = "WRONG"
                elif top is None or got != target:
                    everyone = db.snapshot(lookup, tenant, query, 50)
                    cause = "target a candidate below the top" if any(ext[m.customer_id] == target for m in everyone) \
                        else "target not a candidate (no key, or no possible band)"
                else:
                    cause = "top is target, " + top.confidence + ": " + next(
                        (r.split(":")[0].split(";")[0] for r in reversed(top.reasons) if "ask" in r or "confirm" in r),
                        "weight")
                causes[cause] += 1
                t = by_id.get(target or "", {})
                lines.append(f"{cause:>45} | {name} @ {address} | on file: "
                             f"{t.get('given_name', '')} {t.get('surname', '')} @ {t.get('street_number', '')} "
                             f"{t.get('address_1', '')}, {t.get('address_2', '')}, {t.get('suburb', '')} {t.get('postcode', '')}"
                             f" | top: {top.name if top else '-'} {top.confidence if top else ''} {top.score if top else ''}"
                             f" {'; '.join(top.reasons) if top else ''}")

        anyio.run(run)
        db.close()
    for line in lines[:show]:
        print(line)
    print(f"\nlookups: {len(queries)} callers, {sum(causes.values())} not right")
    for cause, n in causes.most_common():
        print(f"  {n:5d}  {cause}")


if __name__ == "__main__":
    main()
