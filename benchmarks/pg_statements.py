"""Where the store's time goes on PostgreSQL: each SQL statement's calls, rows and seconds, per phase.

    python benchmarks/pg_statements.py [--customers 20000] [--lookups 300] [--cycles 20]
                                       [--db postgresql://postgres@127.0.0.1:5432/postgres]

Imports a generated base into a scratch database (dropped at the end), rebuilds the matching index, and runs
a call-centre mix of lookups, timing every statement the store sends through `PgConnection` (a wrapper put
around its `execute` and `executemany` for this run; nothing in fsm_mcp changes) and every transaction.
Then `--cycles` bookings, one at a time, as MCP tool calls through an in-process mcp.Client (the call sequence
of http_load.py: lookup, slots, create_job, dispatch, four status moves, invoice), tallied per tool.
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
from mcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # tests.when
from generate import write_customers
from identity_scale import queries
from scratch_pg import SERVER, scratch_postgres

from fsm_mcp.connectors.local import LocalBackend
from fsm_mcp.identity.query import caller_profile
from fsm_mcp.importer import import_customers, import_technicians, reindex_customers
from fsm_mcp.inputs import parse_address
from fsm_mcp.server import build_server
from fsm_mcp.settings import Business, Settings
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
_begin_write = pg.PostgresDatabase._begin_write


def _counted_begin(self: pg.PostgresDatabase, conn: pg.PgConnection) -> None:
    transactions[0] += 1  # a unit of work (`atomic`): counted, its time is the call's
    _begin_write(self, conn)


pg.PostgresDatabase._begin_write = _counted_begin  # type: ignore[method-assign]


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


async def cycles(url: str | Path, business: Business, count: int) -> None:
    """`count` booking cycles through the in-process server, one call at a time; per tool: wall, transactions,
    statements and the time inside them, per call."""
    from datetime import datetime, timedelta

    from tests.when import MONDAY

    per_tool: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0, 0, 0.0])  # calls, wall, txns, stmts, in stmts
    techs = open_store(url)
    tech = techs.read(lambda c: c.execute("SELECT id FROM technicians").fetchone()[0])
    techs.close()
    line = [{"description": "Diagnostic", "kind": "service", "quantity": "1", "unit_price": "89.00"}]
    async with Client(build_server(Settings(db_path=url, business=business))) as client:

        async def call(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
            tally.clear()
            transactions[:] = [0, 0.0]
            start = time.perf_counter()
            result = await client.call_tool(tool, arguments)
            entry = per_tool[tool]
            entry[0] += 1
            entry[1] += time.perf_counter() - start
            entry[2] += transactions[0]
            entry[3] += sum(e[0] for e in tally.values())
            entry[4] += sum(e[2] for e in tally.values())
            assert not result.is_error, result.content
            return result.structured_content or {}

        first = datetime(MONDAY.year, MONDAY.month, MONDAY.day, 8)
        for i in range(count):
            window = first + timedelta(hours=3 * i)
            phone = f"+1312777{i:04d}"
            await call("lookup_customer", {"phone": phone})
            await call("find_available_slots", {"job_type": "hvac", "date_from": window.date().isoformat()})
            job = await call("create_job", {
                "customer": {"name": f"Cycle Caller{i}", "phone": phone, "address": f"{100 + i} Elm Street, Springfield, IL 62704"},
                "job_type": "hvac", "summary": "no heat", "idempotency_key": f"c{i}", "new_customer": True,
                "window_start": window.isoformat(), "window_end": (window + timedelta(hours=2)).isoformat()})
            await call("dispatch_technician", {"job_id": job["job_id"], "technician_id": tech, "idempotency_key": f"d{i}"})
            for status in ("en_route", "arrived", "working", "completed"):
                await call("update_job_status", {"job_id": job["job_id"], "status": status})
            await call("create_invoice", {"job_id": job["job_id"], "line_items": line, "idempotency_key": f"i{i}"})
    print(f"{count} booking cycles on {'PostgreSQL' if isinstance(url, str) else 'SQLite'} through the in-process "
          "mcp.Client, one call at a time (per call; the first cycle's calls included):")
    for tool, (n, wall, txns, stmts, inside) in per_tool.items():
        print(f"  {tool:22s} {1000 * wall / n:7.2f} ms wall  {txns / n:5.1f} transactions  {stmts / n:6.1f} statements  "
              f"{1000 * inside / n:7.2f} ms inside them")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--lookups", type=int, default=300)
    parser.add_argument("--db", default=SERVER)
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--cycles", type=int, default=20)
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
        roster = Path(tmp) / "techs.csv"
        roster.write_text("external_id,name,phone,skills\nt0,Tech Zero,,hvac\n")
        import_technicians(db, business, roster)
        db.close()
        if args.cycles:
            anyio.run(cycles, url, business, args.cycles)
            sqlite = open_store(Path(tmp) / "cycles.db")  # the same cycles on SQLite, for their wall time
            import_technicians(sqlite, business, roster)
            sqlite.close()
            anyio.run(cycles, Path(tmp) / "cycles.db", business, args.cycles)


if __name__ == "__main__":
    main()
