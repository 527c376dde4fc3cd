"""find_duplicate_customers over a large base with known duplicates: wall time and quality.

    python benchmarks/duplicates_scale.py [--records 100000]

The base is the labelled evaluation set (tests/evalset.py) grown to about `--records`
records, so the figure comes with its precision and recall. The goal is <= 60 s for
100,000 customers.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fsm_mcp.directory.duplicates import find
from fsm_mcp.importer import import_customers
from fsm_mcp.settings import Business
from fsm_mcp.store.db import Database
from tests.evalset import build, write_csv


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    people = int(args.records / 1.33)  # the set adds ~0.33 records per person (duplicates and look-alikes)
    generator, _ = build(people)
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "base.csv"
        write_csv(generator.records, csv_path)
        db = Database(Path(tmp) / "base.db")
        business = Business()
        import_customers(db, business, csv_path)
        start, cpu = time.perf_counter(), time.process_time()
        report = db.read(find, business.tenant_id, "likely", 10**9)
        elapsed, used = time.perf_counter() - start, time.process_time() - cpu
        db.close()
    entity = {r.external_id: r.entity for r in generator.records}
    pure = sum(1 for g in report.groups if len({entity[m.external_id] for m in g.members if m.external_id}) == 1)
    print(f"find_duplicate_customers over {report.customers} customers: {elapsed:.1f} s (goal <= 60 s; {used:.1f} s CPU)")
    print(f"  {report.pairs_compared} candidate pairs compared, {len(report.groups)} groups, "
          f"{pure} of them one person each")


if __name__ == "__main__":
    main()
