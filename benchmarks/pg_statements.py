"""Where the store's time goes on PostgreSQL: each SQL statement's calls, rows and seconds, per phase.

    python benchmarks/pg_statements.py [--customers 20000] [--lookups 300] [--db postgresql://postgres@127.0.0.1:5432/postgres]

Imports a generated base into a scratch database (dropped at the end), rebuilds the matching index, and runs
a call-centre mix of lookups, timing every statement the store sends through `PgConnection` (a wrapper put
around its `execute` and `executemany` for this run; nothing in fsm_mcp changes) and every transaction.
Prints, per phase: wall time, the share of it spent inside statements, transactions, and the statements
that took most of the time, with their calls, rows (for executemany) and milliseconds per call.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import write_customers
from identity_scale import queries
from scratch_pg import SERVER, scratch_postgres

from fsm_mcp.connectors.local import LocalBackend
from fsm_mcp.identity.query import caller_profile
from fsm_mcp.importer import import_customers, reindex_customers
from fsm_mcp.inputs import parse_address
from fsm_mcp.settings import Business
from fsm_mcp.store import open_store
from fsm_mcp.store import postgres as pg

Tally = dict[str, list[float]]  # statement -> [calls, rows, seconds]
tally: Tally = defaultdict(lambda: [0, 0, 0.0])
transactions = [0, 0.0]
slowest: dict[str, tuple[float, str, tuple[Any, ...]]] = {}  # statement -> its slowest single call: seconds, SQL, params


def timed(method: Callable[..., Any], many: bool) -> Callable[..., Any]:
    def wrapper(self: pg.PgConnection, sql: str, params: Any = ()) -> Any:
        if many:
            params = list(params)
        start = time.perf_counter()
        try:
            return method(self, sql, params)
        finally:
            key = " ".join(sql.split())[:150]
            entry = tally[key]
            entry[0] += 1
            entry[1] += len(params) if many else 1
            took = time.perf_counter() - start
            entry[2] += took
            if not many and took > slowest.get(key, (0.0,))[0]:
                slowest[key] = (took, sql, tuple(params))

    return wrapper


def timed_run(method: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(self: pg.PostgresDatabase, fn: Callable[..., Any], args: tuple[object, ...], write: bool) -> Any:
        held = pg._held.get()
        if held is not None and held[0] is self:
            return method(self, fn, args, write)
        start = time.perf_counter()
        try:
            return method(self, fn, args, write)
        finally:
            transactions[0] += 1
            transactions[1] += time.perf_counter() - start

    return wrapper


pg.PgConnection.execute = timed(pg.PgConnection.execute, many=False)  # type: ignore[method-assign]
pg.PgConnection.executemany = timed(pg.PgConnection.executemany, many=True)  # type: ignore[method-assign]
pg.PostgresDatabase._run = timed_run(pg.PostgresDatabase._run)  # type: ignore[method-assign]


def explain(db: Any, count: int) -> None:
    """EXPLAIN ANALYZE of the slowest single calls of the statements slowest per call in the phase just run."""
    worst = sorted(((tally[k][2] / tally[k][0], k) for k in slowest if k in tally), reverse=True)[:count]
    for per_call, key in worst:
        took, sql, params = slowest[key]
        plan = db.read(lambda c, sql=sql, params=params: c.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall())
        print(f"  EXPLAIN ANALYZE of its slowest call ({1000 * took:.1f} ms; {1000 * per_call:.2f} ms a call on average): {key}")
        for row in plan:
            print(f"      {row[0][:200]}")


def report(phase: str, wall: float, top: int) -> None:
    inside = sum(e[2] for e in tally.values())
    print(f"{phase}: {wall:.2f} s wall, {inside:.2f} s inside statements ({100 * inside / wall:.0f} %), "
          f"{int(transactions[0])} transactions ({transactions[1]:.2f} s), "
          f"{int(sum(e[0] for e in tally.values()))} statement calls", flush=True)
    for sql, (calls, rows, seconds) in sorted(tally.items(), key=lambda kv: -kv[1][2])[:top]:
        print(f"  {seconds:8.3f} s  {int(calls):7d} calls  {int(rows):8d} rows  {1000 * seconds / calls:8.3f} ms/call  {sql}")
    tally.clear()
    slowest.clear()
    transactions[:] = [0, 0.0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--lookups", type=int, default=300)
    parser.add_argument("--db", default=SERVER)
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--explain", type=int, default=2, help="EXPLAIN ANALYZE the N lookup statements slowest per call")
    args = parser.parse_args()
    business = Business()
    with tempfile.TemporaryDirectory() as tmp, scratch_postgres(args.db) as url:
        csv_path = Path(tmp) / "customers.csv"
        write_customers(csv_path, args.customers)
        db = open_store(url)
        tally.clear()
        start = time.perf_counter()
        import_customers(db, business, csv_path)
        report(f"import of {args.customers} customers", time.perf_counter() - start, args.top)
        start = time.perf_counter()
        reindex_customers(db, business.tenant_id)
        report("index rebuild", time.perf_counter() - start, args.top)
        rng = random.Random(5)
        emails = [row[0] for _ in range(50) for row in db.read(lambda c: c.execute(
            "SELECT e.email FROM customers c JOIN customer_emails e ON e.tenant_id=c.tenant_id AND e.customer_id=c.id "
            "WHERE c.tenant_id=? AND c.external_id=?", (business.tenant_id, f"ext{rng.randrange(args.customers)}")).fetchall())]
        mix = queries(args.customers, args.lookups, emails)
        backend = LocalBackend(db, business)
        tally.clear()
        transactions[:] = [0, 0.0]

        async def run() -> None:
            for _, q in mix:
                where = parse_address(q["address"]) if "address" in q else None  # type: ignore[arg-type]
                profile = caller_profile(region="US", address=where, **{k: v for k, v in q.items() if k != "address"})  # type: ignore[arg-type]
                await backend.lookup_customers(profile, 5)

        start = time.perf_counter()
        anyio.run(run)
        wall = time.perf_counter() - start
        saved = dict(tally), dict(slowest)
        report(f"{args.lookups} lookups", wall, args.top)
        tally.update(saved[0])
        slowest.update(saved[1])
        explain(db, args.explain)
        db.close()


if __name__ == "__main__":
    main()
