"""Lookup latency in CPU time as well as wall time, on an existing SQLite base, with whichever fsm_mcp is on
PYTHONPATH: for comparing two trees on a busy machine, where other processes' load moves wall-clock
percentiles by more than the change being looked for.

    PYTHONPATH=TREE python benchmarks/lookup_cpu.py --db identity-100000.db --customers 100000 [--lookups 2000]

Uses only what every tree since a0e370e has (`Database`, `LocalBackend.lookup_customers`, `caller_profile`) and
TREE's own benchmarks/identity_scale.py for the query mix. A lookup on SQLite runs on the calling thread, so
its thread CPU time is its cost, whatever else the machine runs. Prints wall and CPU p50/p95 (in ms).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

import anyio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--customers", type=int, required=True)
    parser.add_argument("--lookups", type=int, default=2000)
    args = parser.parse_args()
    tree = Path(os.environ.get("PYTHONPATH", str(Path(__file__).resolve().parents[1])).split(os.pathsep)[0])
    sys.path.insert(0, str(tree / "benchmarks"))
    from identity_scale import queries

    from fsm_mcp.connectors.local import LocalBackend
    from fsm_mcp.identity.query import caller_profile
    from fsm_mcp.inputs import parse_address
    from fsm_mcp.settings import Business
    from fsm_mcp.store.db import Database

    business = Business()
    db = Database(args.db)
    backend = LocalBackend(db, business)
    rng = random.Random(5)
    emails = [row[0] for _ in range(200) for row in db.read(lambda c: c.execute(
        "SELECT e.email FROM customers c JOIN customer_emails e ON e.tenant_id=c.tenant_id AND e.customer_id=c.id "
        "WHERE c.tenant_id=? AND c.external_id=?", (business.tenant_id, f"ext{rng.randrange(args.customers)}")).fetchall())]
    mix = queries(args.customers, args.lookups, emails)
    wall: list[float] = []
    cpu: list[float] = []
    by_kind: dict[str, list[float]] = {}

    async def run() -> None:
        for kind, q in mix:
            w, c = time.perf_counter(), time.thread_time()
            where = parse_address(q["address"]) if "address" in q else None  # type: ignore[arg-type]
            profile = caller_profile(region="US", address=where, **{k: v for k, v in q.items() if k != "address"})  # type: ignore[arg-type]
            await backend.lookup_customers(profile, 5)
            cpu.append((time.thread_time() - c) * 1000)
            by_kind.setdefault(kind, []).append(cpu[-1])
            wall.append((time.perf_counter() - w) * 1000)

    anyio.run(run)
    db.close()
    for label, values in (("wall", wall), ("cpu", cpu), *((f"cpu of {k}", v) for k, v in by_kind.items())):
        values.sort()
        print(f"{label}: p50 {statistics.median(values):.3f} ms  p95 {values[int(0.95 * (len(values) - 1))]:.3f} ms")


if __name__ == "__main__":
    main()
