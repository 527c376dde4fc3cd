"""The store on PostgreSQL, for several replicas sharing one system of record.

The store's SQL is written once, in the subset both databases run (`?` placeholders, `ON CONFLICT` upserts,
TEXT and INTEGER columns), and the functions that hold it take a DB-API connection, as they do on SQLite.
Here they get a connection from a psycopg 3 pool on a worker thread, through `PgConnection`, which rewrites
the few SQLite spellings the store still uses (see `dialect.py`) and binds parameters on the client, as
SQLite does, so that `? IS NULL` needs no declared type.

Writes are serialised, as on SQLite: every write transaction first takes one transaction-level advisory
lock, so the store's check-then-write rules (one idempotency key, one job per window, one lease holder)
hold across replicas exactly as they hold across SQLite's processes. Reads run concurrently and never wait
for a writer. A writer that cannot get the lock within `LOCK_WAIT` is told the store is busy, as SQLite's
busy timeout does.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import anyio
import anyio.to_thread
import psycopg
import psycopg.adapt
import psycopg.errors
import psycopg.pq
from psycopg_pool import ConnectionPool

from fsm_mcp.clock import Clock
from fsm_mcp.errors import Busy
from fsm_mcp.store.dialect import postgres_ddl, postgres_sql
from fsm_mcp.store.schema import MIGRATIONS

T = TypeVar("T")

WRITE_LOCK = 0x66736D  # the advisory lock every write transaction holds ("fsm")
MIGRATION_LOCK = 0x66736E  # held while a replica migrates, so that two starting at once do not both
LOCK_WAIT = "10s"  # as SQLite's busy_timeout
POOL_SIZE = 8


def is_postgres(target: object) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def redacted(url: str) -> str:
    """The URL without its password, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class Row(Sequence[Any]):
    """A row read by index or by column name, as `sqlite3.Row` is."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: dict[str, int], values: Sequence[Any]) -> None:
        self._names = names
        self._values = values

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self._values[self._names[key]]
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __eq__(self, other: object) -> bool:
        return tuple(self._values) == tuple(other) if isinstance(other, Sequence) else NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self._values))

    def __lt__(self, other: Sequence[Any]) -> bool:
        return tuple(self._values) < tuple(other)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._names, self._values, strict=True))!r})"

    def keys(self) -> list[str]:
        return list(self._names)


def _rows(cursor: psycopg.Cursor[Any]) -> Callable[[Sequence[Any]], Row]:
    names = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(names, values)


class _BoolAsInteger(psycopg.adapt.Dumper):
    """The store keeps flags as INTEGER 0/1 (SQLite has no boolean); a Python bool goes in as one."""

    oid = psycopg.adapters.types["int8"].oid

    def dump(self, obj: bool) -> bytes:
        return b"1" if obj else b"0"


class PgConnection:
    """The DB-API surface the store's SQL functions use (`execute`, `executemany`), over one psycopg connection."""

    dialect = "postgresql"

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        cursor = self.raw.cursor(row_factory=_rows)
        cursor.execute(postgres_sql(sql), tuple(params))
        return cursor

    def cursor(self) -> _Streaming:
        """A cursor of its own, reading its rows from the server as they are iterated (a scan of the base)."""
        return _Streaming(self.raw)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> psycopg.Cursor[Any]:
        """An INSERT of many rows goes as multi-row VALUES, ROWS_PER_INSERT at a time: psycopg would send each row
        as a statement of its own, parsed and planned each time (a million-customer import took 23 minutes so)."""
        cursor = self.raw.cursor(row_factory=_rows)
        batch = [tuple(r) for r in rows]
        if not batch:
            return cursor
        many = multi_row_insert(sql)
        if many is None:
            cursor.executemany(postgres_sql(sql), batch)
            return cursor
        head, group, tail = many
        for start in range(0, len(batch), ROWS_PER_INSERT):
            chunk = batch[start : start + ROWS_PER_INSERT]
            statement = f"{head}{','.join([group] * len(chunk))}{tail}"
            cursor.execute(postgres_sql(statement), [value for row in chunk for value in row])
        return cursor

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Rows streamed into a table by COPY: one statement for the lot, nothing parsed or planned per row (an
        import's batch of 2,000 customers is five tables' rows; as multi-row INSERTs they took most of its time)."""
        with self.raw.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


ROWS_PER_INSERT = 500
_VALUES = re.compile(r"^(\s*INSERT\s+INTO\s.*?\bVALUES\s*)(\((?:\s*\?\s*,)*\s*\?\s*\))(.*)$", re.IGNORECASE | re.DOTALL)


@lru_cache(maxsize=256)
def multi_row_insert(sql: str) -> tuple[str, str, str] | None:
    """`INSERT ... VALUES (?,?,?) <tail>` split around its one row of placeholders, or None for anything else."""
    match = _VALUES.match(sql)
    if match is None or "?" in match.group(3) or "DO UPDATE" in match.group(3).upper():
        return None  # an upsert may meet one key twice in a batch, which PostgreSQL refuses in one statement
    return match.group(1), match.group(2), match.group(3)


_SCANS = itertools.count()


class _Streaming:
    """`conn.cursor()` for a long scan: a server-side cursor inside the open transaction, read 5,000 rows at a time."""

    row_factory: object = None  # as sqlite3's cursors have; rows read by index either way

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Iterator[Row]:
        cursor = self.raw.cursor(name=f"scan_{next(_SCANS)}", row_factory=_rows)  # unique in the session
        cursor.itersize = 5000
        cursor.execute(postgres_sql(sql), tuple(params))
        return iter(cursor)


_held: ContextVar[tuple[PostgresDatabase, PgConnection, list[bool]] | None] = ContextVar("fsm_mcp_pg_held", default=None)


def _configure(raw: psycopg.Connection[Any]) -> None:
    raw.adapters.register_dumper(bool, _BoolAsInteger)
    raw.execute(f"SET lock_timeout = '{LOCK_WAIT}'")
    raw.execute("SET TIME ZONE 'UTC'")


class PostgresDatabase:
    """The same surface as the SQLite `Database`: read/write/snapshot/peek, their async forms, and `atomic`."""

    dialect = "postgresql"

    def __init__(self, url: str, clock: Clock | None = None, pool_size: int = POOL_SIZE, migrate: bool = True) -> None:
        self.clock = clock or Clock()
        self.url = url
        self.path = redacted(url)  # what messages show
        self._pool = ConnectionPool(
            url, min_size=1, max_size=pool_size, open=True, configure=_configure,
            kwargs={"autocommit": True, "cursor_factory": psycopg.ClientCursor},
        )
        self._limiter = anyio.CapacityLimiter(pool_size)
        if migrate:
            self._migrate()

    # --- schema -------------------------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._pool.connection() as raw:
            raw.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                raw.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
                row = raw.execute("SELECT version FROM schema_version").fetchone()
                if row is None:
                    raw.execute("INSERT INTO schema_version (version) VALUES (0)")
                version = row[0] if row else 0
                for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                    with raw.transaction():
                        raw.execute(postgres_ddl(script))
                        raw.execute("UPDATE schema_version SET version = %s", (number,))
            finally:
                raw.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))

    def analyze(self) -> None:
        with self._pool.connection() as raw:
            raw.execute("ANALYZE")

    @contextmanager
    def bulk(self) -> Iterator[None]:
        yield  # PostgreSQL sizes its own buffers; the import's batches are what matter here

    # --- transactions -------------------------------------------------------------------------------------

    def _run(self, fn: Callable[..., T], args: tuple[object, ...], write: bool) -> T:
        held = _held.get()
        if held is not None and held[0] is self:
            _, conn, locked = held
            if write and not locked[0]:
                self._lock_writes(conn)
                locked[0] = True
            return fn(conn, *args)
        with self._pool.connection() as raw:
            conn = PgConnection(raw)
            raw.execute("BEGIN")
            token = _held.set((self, conn, [write]))
            try:
                if write:
                    self._lock_writes(conn)
                result = fn(conn, *args)
            except BaseException:
                raw.execute("ROLLBACK")
                raise
            finally:
                _held.reset(token)
            raw.execute("COMMIT")
            return result

    @staticmethod
    def _lock_writes(conn: PgConnection) -> None:
        try:
            conn.raw.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        except psycopg.errors.LockNotAvailable:
            raise Busy("the store is busy with another writer; retry in a few seconds with the same arguments") from None

    def read(self, fn: Callable[..., T], *args: object) -> T:
        return self._run(fn, args, write=False)

    def write(self, fn: Callable[..., T], *args: object) -> T:
        """Run fn in one transaction holding the write lock; a nested call joins the outer one."""
        return self._run(fn, args, write=True)

    def snapshot(self, fn: Callable[..., T], *args: object) -> T:
        return self._run(fn, args, write=False)

    def peek(self, sql: str, args: tuple[object, ...]) -> tuple[object, ...] | None:
        row = self.read(lambda conn: conn.execute(sql, args).fetchone())
        return tuple(row) if row is not None else None

    async def asnapshot(self, fn: Callable[..., T], *args: object) -> T:
        """A short read; on a networked database it leaves the event loop like any other."""
        return await self.aread(fn, *args)

    async def apeek(self, sql: str, args: tuple[object, ...]) -> tuple[object, ...] | None:
        return await self._thread(self.peek, sql, args)

    async def _thread(self, fn: Callable[..., T], *args: object) -> T:
        held = _held.get()
        if held is not None and held[0] is self:  # inside this task's transaction: no new connection is taken
            return await anyio.to_thread.run_sync(fn, *args)
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    async def aread(self, fn: Callable[..., T], *args: object) -> T:
        return await self._thread(self.read, fn, *args)

    async def ascan(self, fn: Callable[..., T], *args: object) -> T:
        return await self._thread(self.read, fn, *args)

    async def awrite(self, fn: Callable[..., T], *args: object) -> T:
        return await self._thread(self.write, fn, *args)

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        """One transaction, holding the write lock, for every `awrite` and `aread` this task makes in the block."""
        held = _held.get()
        if held is not None and held[0] is self:
            yield
            return
        async with self._limiter:
            raw = await anyio.to_thread.run_sync(self._pool.getconn)
            conn = PgConnection(raw)
            try:
                await anyio.to_thread.run_sync(self._begin_write, conn)
                token = _held.set((self, conn, [True]))
                try:
                    yield
                except BaseException:
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(raw.execute, "ROLLBACK")
                    raise
                finally:
                    _held.reset(token)
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(raw.execute, "COMMIT")
            finally:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self._pool.putconn, raw)

    def _begin_write(self, conn: PgConnection) -> None:
        conn.raw.execute("BEGIN")
        try:
            self._lock_writes(conn)
        except BaseException:
            conn.raw.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._pool.close()
