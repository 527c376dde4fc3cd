"""Which PostgreSQL driver for the store (issue #22): psycopg 3 with its pool, asyncpg, or SQLAlchemy Core over
asyncpg, measured on the two shapes of work the server does most — a caller lookup (a few indexed reads in one
read-only transaction) and a booking's write transaction (an idempotency row, a job, its first event, an audit
entry) — one at a time (latency) and from 32 tasks at once (throughput on this 2-core machine).

    pip install "psycopg[binary,pool]" asyncpg "sqlalchemy[asyncio]"
    python benchmarks/pg_drivers.py [--dsn postgresql://postgres@127.0.0.1:5432/postgres] [--rounds 3]

Also the store as built on psycopg 3's synchronous pool (StoreAsBuilt), which the choice came down to: see its
docstring. Creates a scratch database, fills 100,000 customers, and drops it at the end. Rounds alternate the drivers'
order; figures are medians over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

SCHEMA = """
CREATE TABLE customers (tenant_id text NOT NULL, id text NOT NULL, name text NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE customer_phones (tenant_id text NOT NULL, customer_id text NOT NULL, e164 text NOT NULL,
                              PRIMARY KEY (tenant_id, customer_id, e164));
CREATE INDEX phones_number ON customer_phones (tenant_id, e164);
CREATE TABLE match_keys (tenant_id text NOT NULL, key text NOT NULL, customer_id text NOT NULL,
                         PRIMARY KEY (tenant_id, key, customer_id));
CREATE TABLE jobs (tenant_id text NOT NULL, id text NOT NULL, customer_id text NOT NULL, summary text NOT NULL,
                   status text NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE job_events (tenant_id text NOT NULL, job_id text NOT NULL, seq int NOT NULL, status text NOT NULL,
                         PRIMARY KEY (tenant_id, job_id, seq));
CREATE TABLE idempotency (tenant_id text NOT NULL, key text NOT NULL, result text, PRIMARY KEY (tenant_id, key));
CREATE TABLE audit_log (id bigserial PRIMARY KEY, tenant_id text NOT NULL, tool text NOT NULL, arguments text NOT NULL);
"""
N = 100_000
LOOKUP = [
    "SELECT customer_id FROM customer_phones WHERE tenant_id = $1 AND e164 = $2",
    "SELECT customer_id FROM match_keys WHERE tenant_id = $1 AND key = $2 LIMIT 50",
    "SELECT id, name FROM customers WHERE tenant_id = $1 AND id = $2",
]
WRITE = [
    "INSERT INTO idempotency (tenant_id, key) VALUES ($1, $2)",
    "INSERT INTO jobs (tenant_id, id, customer_id, summary, status) VALUES ($1, $2, $3, 'No heat', 'scheduled')",
    "INSERT INTO job_events (tenant_id, job_id, seq, status) VALUES ($1, $2, 1, 'scheduled')",
    "INSERT INTO audit_log (tenant_id, tool, arguments) VALUES ($1, 'create_job', $2)",
    "UPDATE idempotency SET result = $3 WHERE tenant_id = $1 AND key = $2",
]


def psycopg_sql(sql: str) -> str:
    for n in range(5, 0, -1):
        sql = sql.replace(f"${n}", "%s")
    return sql


def lookup_args(i: int) -> list[tuple[Any, ...]]:
    cid = f"cus_{i % N:06d}"
    return [("t", f"+1217555{i % N:06d}"[:12]), ("t", f"sur:{i % 997}"), ("t", cid)]


def write_args(i: int) -> list[tuple[Any, ...]]:
    key, job = f"k-{uuid.uuid4().hex}", f"job_{uuid.uuid4().hex}"
    return [("t", key), ("t", job, f"cus_{i % N:06d}"), ("t", job), ("t", '{"summary":"No heat"}'), ("t", key, job)]


class Psycopg:
    name = "psycopg 3 + pool"

    async def open(self, dsn: str) -> None:
        from psycopg_pool import AsyncConnectionPool

        self.pool = AsyncConnectionPool(dsn, min_size=8, max_size=8, open=False)
        await self.pool.open(wait=True)

    async def lookup(self, i: int) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            for sql, args in zip(LOOKUP, lookup_args(i), strict=True):
                await (await conn.execute(psycopg_sql(sql), args, prepare=True)).fetchall()

    async def write(self, i: int) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            for sql, args in zip(WRITE, write_args(i), strict=True):
                await conn.execute(psycopg_sql(sql), args, prepare=True)

    async def close(self) -> None:
        await self.pool.close()


class Asyncpg:
    name = "asyncpg"

    async def open(self, dsn: str) -> None:
        import asyncpg

        self.pool = await asyncpg.create_pool(dsn, min_size=8, max_size=8)

    async def lookup(self, i: int) -> None:
        async with self.pool.acquire() as conn, conn.transaction(readonly=True):
            for sql, args in zip(LOOKUP, lookup_args(i), strict=True):
                await conn.fetch(sql, *args)

    async def write(self, i: int) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            for sql, args in zip(WRITE, write_args(i), strict=True):
                await conn.execute(sql, *args)

    async def close(self) -> None:
        await self.pool.close()


class Alchemy:
    name = "SQLAlchemy Core (asyncpg)"

    async def open(self, dsn: str) -> None:
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        self.engine = create_async_engine(dsn.replace("postgresql://", "postgresql+asyncpg://"), pool_size=8)
        self.lookups = [text(_named(s)) for s in LOOKUP]
        self.writes = [text(_named(s)) for s in WRITE]

    async def lookup(self, i: int) -> None:
        async with self.engine.connect() as conn:
            for stmt, args in zip(self.lookups, lookup_args(i), strict=True):
                (await conn.execute(stmt, _params(args))).fetchall()
            await conn.commit()

    async def write(self, i: int) -> None:
        async with self.engine.begin() as conn:
            for stmt, args in zip(self.writes, write_args(i), strict=True):
                await conn.execute(stmt, _params(args))

    async def close(self) -> None:
        await self.engine.dispose()


class StoreAsBuilt:
    """The store as built (fsm_mcp/store/postgres.py): psycopg 3's synchronous pool on worker threads, parameters
    bound on the client, the same SQL functions as SQLite's, each write holding the store's advisory lock."""

    name = "fsm-mcp store (psycopg 3 sync, threads)"

    async def open(self, dsn: str) -> None:
        from fsm_mcp.store.postgres import PostgresDatabase

        self.db = PostgresDatabase(dsn, migrate=False)  # the benchmark's own scratch schema, not the store's

    @staticmethod
    def _qmarks(sql: str) -> str:
        for n in range(5, 0, -1):
            sql = sql.replace(f"${n}", "?")
        return sql

    async def lookup(self, i: int) -> None:
        def read(conn: Any) -> None:
            for sql, args in zip(LOOKUP, lookup_args(i), strict=True):
                conn.execute(self._qmarks(sql), args).fetchall()
        await self.db.aread(read)

    async def write(self, i: int) -> None:
        def write(conn: Any) -> None:
            for sql, args in zip(WRITE, write_args(i), strict=True):
                conn.execute(self._qmarks(sql), args)
        await self.db.awrite(write)

    async def close(self) -> None:
        self.db.close()


def _named(sql: str) -> str:
    for n in range(5, 0, -1):
        sql = sql.replace(f"${n}", f":p{n}")
    return sql


def _params(args: tuple[Any, ...]) -> dict[str, Any]:
    return {f"p{n}": v for n, v in enumerate(args, start=1)}


async def fill(dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    await conn.execute(SCHEMA)
    await conn.copy_records_to_table("customers", records=[("t", f"cus_{i:06d}", f"Customer {i}") for i in range(N)])
    await conn.copy_records_to_table("customer_phones", records=[("t", f"cus_{i:06d}", f"+1217555{i:06d}"[:12])
                                                                 for i in range(N)])
    await conn.copy_records_to_table("match_keys", records=[("t", f"sur:{i % 997}", f"cus_{i:06d}") for i in range(N)])
    await conn.execute("ANALYZE")
    await conn.close()


async def timed(op: Callable[[int], Awaitable[None]], n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        await op(i)
        out.append(time.perf_counter() - t0)
    return out


async def rate(op: Callable[[int], Awaitable[None]], tasks: int, seconds: float) -> float:
    done = 0
    until = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        i = w * 1_000_000
        while time.perf_counter() < until:
            await op(i)
            i += 1
            done += 1

    await asyncio.gather(*(worker(w) for w in range(tasks)))
    return done / seconds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    import asyncpg

    scratch = f"fsm_pg_drivers_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.dsn)
    await admin.execute(f'CREATE DATABASE "{scratch}"')
    dsn = args.dsn.rsplit("/", 1)[0] + "/" + scratch
    figures: dict[str, dict[str, list[float]]] = {}
    try:
        await fill(dsn)
        drivers = [Psycopg(), Asyncpg(), Alchemy(), StoreAsBuilt()]
        for r in range(args.rounds):
            for driver in drivers if r % 2 == 0 else drivers[::-1]:
                await driver.open(dsn)
                await timed(driver.lookup, 200)  # warm the pool, the plans and the caches
                got = figures.setdefault(driver.name, {})
                lookups = await timed(driver.lookup, args.calls)
                writes = await timed(driver.write, args.calls // 2)
                got.setdefault("lookup p50 ms", []).append(statistics.median(lookups) * 1000)
                got.setdefault("lookup p95 ms", []).append(statistics.quantiles(lookups, n=20)[18] * 1000)
                got.setdefault("write p50 ms", []).append(statistics.median(writes) * 1000)
                got.setdefault("write p95 ms", []).append(statistics.quantiles(writes, n=20)[18] * 1000)
                got.setdefault("lookups/s x32", []).append(await rate(driver.lookup, 32, args.seconds))
                got.setdefault("writes/s x32", []).append(await rate(driver.write, 32, args.seconds))
                await driver.close()
                print(f"round {r + 1}: {driver.name} done", flush=True)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        await admin.close()
    columns = ["lookup p50 ms", "lookup p95 ms", "write p50 ms", "write p95 ms", "lookups/s x32", "writes/s x32"]
    print(f"\nmedians over {args.rounds} rounds, {N:,} customers, {args.calls} lookups and {args.calls // 2} writes "
          "one at a time, then 32 tasks for {:.0f} s each".format(args.seconds))
    print("| driver | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name, got in figures.items():
        print(f"| {name} | " + " | ".join(f"{statistics.median(got[c]):.2f}" if "ms" in c else
                                          f"{statistics.median(got[c]):.0f}" for c in columns) + " |")


if __name__ == "__main__":
    asyncio.run(main())
