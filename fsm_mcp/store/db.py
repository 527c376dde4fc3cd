"""The embedded store, one SQLite database: WAL mode, writes in BEGIN IMMEDIATE transactions, migrations.

Writes and long reads go through one connection guarded by a lock, on a worker thread
when called from async code. Short indexed reads (recognising a caller, loading one
record) run on the caller's thread through a second, read-only connection: in WAL mode
it never waits for a writer, and skipping the thread hop makes them about 3x faster
(see `snapshot`). Several writes that must stand or fall together (a booking and the
idempotency record that guards it) share one transaction through `atomic`.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import ParamSpec, TypeVar

import anyio
import anyio.to_thread

from fsm_mcp.clock import Clock
from fsm_mcp.errors import Busy
from fsm_mcp.store.schema import MIGRATIONS

P = ParamSpec("P")
T = TypeVar("T")


def new_id(prefix: str) -> str:
    """An id that sorts by creation time: microseconds, then 24 random bits.

    Records are stored in id order, so time-ordered ids append to the tables instead of
    landing on random pages (an import of a million customers feels the difference), and
    "oldest first" is simply id order.
    """
    return new_ids(prefix, 1)[0]


def new_ids(prefix: str, n: int) -> list[str]:
    """n ids as `new_id` describes them, their random bits read from the system at once: an import makes three
    a customer, and a read each let the import's other thread take the interpreter for up to its switch
    interval (at 100,000 customers the ids were a fifth of the import's writing thread)."""
    bits = secrets.token_hex(3 * n)
    return [f"{prefix}_{time.time_ns() // 1000:013x}{bits[6 * i:6 * i + 6]}" for i in range(n)]


def placeholders(n: int) -> str:
    """"?,?,?" for an IN list of n values."""
    return ",".join("?" * n)


def to_db(moment: datetime) -> str:
    """Fixed-width UTC text, so that string order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_db(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _fresh_statistics(conn: sqlite3.Connection) -> None:
    conn.execute("DROP TABLE IF EXISTS sqlite_stat1")
    conn.execute("ANALYZE")


_atomic: ContextVar[Database | None] = ContextVar("fsm_mcp_atomic", default=None)  # the base whose transaction this task holds

CACHE = "cache_size=-65536"  # 64 MiB of pages per connection: a large base's indexes stay warm
BULK_CACHE = "cache_size=-1048576"  # 1 GiB while importing or reindexing: random-order index inserts stay in memory


class Database:
    dialect = "sqlite"

    # A base opened before it held customers has no statistics to plan by; imports analyse it,
    # and so does every this-many-th write while it still has none.
    ANALYZE_AFTER_WRITES = 200

    def __init__(self, path: str | Path, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()  # stamps every record this store writes
        if str(path).startswith(("postgresql:", "postgres:")):
            raise ValueError("a PostgreSQL URL is not a SQLite file: open it with fsm_mcp.store.open_store")
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000", "foreign_keys=ON", CACHE):
            self.conn.execute(f"PRAGMA {pragma}")
        self._lock = threading.RLock()
        self._depth = 0
        self._writes = 0
        self._limiter = anyio.CapacityLimiter(1)
        self._migrate()
        self._analyze_once()
        self._reader = self._open_reader()

    def _open_reader(self) -> sqlite3.Connection | None:
        if self.path == ":memory:":
            return None  # a second connection would see a different, empty database
        return self._read_only()

    def _read_only(self) -> sqlite3.Connection:
        reader = sqlite3.connect(f"{Path(self.path).resolve().as_uri()}?mode=ro", uri=True,
                                 check_same_thread=False, isolation_level=None)
        reader.row_factory = sqlite3.Row
        reader.execute("PRAGMA busy_timeout=2000")
        reader.execute(f"PRAGMA {CACHE}")
        return reader

    def analyze(self) -> None:
        """Refresh the planner's statistics in full (about 4 s on a million customers).

        Without statistics SQLite reads `tenant_id=?` as selective and scans a whole
        business's rows instead of using the customer index (28x slower lookups, measured).
        Sampled statistics (`analysis_limit`) are no better: on a million customers they
        claimed a business had ~1,000 locations, and reindexing scanned them all per batch.
        Run after bulk loads; otherwise only while a database has never been analysed (on
        open, and every ANALYZE_AFTER_WRITES writes), since the proportions that guide the
        planner change little as a business grows.

        A connection reads the statistics with the schema and keeps them, so a server left
        running through an import would go on planning for an empty base (lookups 12-23x
        slower, measured, until a restart). The statistics table is therefore made anew:
        that changes the schema, and every open connection, in this process or another,
        reloads schema and statistics before its next statement.
        """
        with self._lock:
            self.conn.execute("PRAGMA analysis_limit=0")
            self._transaction(_fresh_statistics)  # not counted as a write: it would re-trigger the check

    def _analyze_once(self) -> None:
        with self._lock:
            try:
                known = self.conn.execute("SELECT 1 FROM sqlite_stat1 WHERE tbl='customers'").fetchone()
            except sqlite3.OperationalError:  # never analysed: the table does not exist yet
                known = None
        if not known:
            self.analyze()

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """A large page cache for the writer while a bulk load runs: inserts into the identity
        index arrive in key order, not file order, and with the default cache each one reads
        a page from disk (the 1M-customer import ran past five minutes that way)."""
        with self._lock:
            self.conn.execute(f"PRAGMA {BULK_CACHE}")
        try:
            yield
        finally:
            with self._lock:
                self.conn.execute(f"PRAGMA {CACHE}")

    def _migrate(self) -> None:
        with self._lock:
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                self.conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version={number};\nCOMMIT;")

    def read(self, fn: Callable[..., T], *args: object) -> T:
        with self._lock:
            return fn(self.conn, *args)

    def write(self, fn: Callable[..., T], *args: object) -> T:
        """Run fn in one transaction; a nested call joins the outer one."""
        with self._lock:
            if self._depth:
                return fn(self.conn, *args)
            result = self._transaction(fn, *args)
            self._counted()
            return result

    def _counted(self) -> None:
        self._writes += 1
        if self._writes % self.ANALYZE_AFTER_WRITES == 0:
            self._analyze_once()  # a base opened empty and grown by the tools since

    def _begin(self) -> None:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:  # another process held the write lock past busy_timeout
            if "locked" not in str(exc):
                raise
            raise Busy("the store is busy with another writer; retry in a few seconds with the same arguments") from None
        self._depth += 1

    def _end(self, statement: str) -> None:
        self._depth -= 1
        self.conn.execute(statement)

    def _transaction(self, fn: Callable[..., T], *args: object) -> T:
        self._begin()
        try:
            result = fn(self.conn, *args)
        except BaseException:
            self._end("ROLLBACK")
            raise
        self._end("COMMIT")
        return result

    def snapshot(self, fn: Callable[..., T], *args: object) -> T:
        """Run a short read on the calling thread, in one read transaction (a consistent view).

        Meant for the event loop's own thread and for reads that use indexes: a caller
        lookup with its profile takes ~0.12 ms here against ~0.37 ms through a worker
        thread, where the hop and a cold core cost more than the read. Anything that may
        scan (lists, reports, duplicate finding) belongs in `aread` instead. Only one
        thread may use it at a time: the event loop's, in the server.
        """
        if self._reader is None:
            return self.read(fn, *args)
        self._reader.execute("BEGIN")
        try:
            return fn(self._reader, *args)
        finally:
            self._reader.execute("COMMIT")

    def peek(self, sql: str, args: tuple[object, ...]) -> tuple[object, ...] | None:
        """One row of one indexed SELECT, on the calling thread: a single statement is its own read
        transaction, so this skips `snapshot`'s BEGIN and COMMIT (for the key looked up on every request)."""
        if self._reader is None:
            with self._lock:
                row = self.conn.execute(sql, args).fetchone()
        else:
            row = self._reader.execute(sql, args).fetchone()
        return tuple(row) if row is not None else None

    async def asnapshot(self, fn: Callable[..., T], *args: object) -> T:
        """`snapshot` for async callers: on SQLite it stays on the loop's thread (see there)."""
        return self.snapshot(fn, *args)

    async def apeek(self, sql: str, args: tuple[object, ...]) -> tuple[object, ...] | None:
        return self.peek(sql, args)

    async def aread(self, fn: Callable[..., T], *args: object) -> T:
        if _atomic.get() is self:  # inside this task's transaction: read what it has written
            return await anyio.to_thread.run_sync(self.read, fn, *args)
        return await anyio.to_thread.run_sync(self.read, fn, *args, limiter=self._limiter)

    async def ascan(self, fn: Callable[..., T], *args: object) -> T:
        """A long read (a report, a scan of the base) on its own connection in a worker
        thread, so that bookings and lookups go on while it runs."""
        if self._reader is None:
            return await self.aread(fn, *args)

        def scan() -> T:
            conn = self._read_only()
            try:
                conn.execute("BEGIN")
                return fn(conn, *args)
            finally:
                conn.close()

        return await anyio.to_thread.run_sync(scan)

    async def awrite(self, fn: Callable[..., T], *args: object) -> T:
        if _atomic.get() is self:  # this task holds the writer: join its open transaction
            return await anyio.to_thread.run_sync(self.write, fn, *args)
        return await anyio.to_thread.run_sync(self.write, fn, *args, limiter=self._limiter)

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        """One transaction for every `awrite` this task makes inside the block: committed
        together when the block ends, rolled back together when it raises, is cancelled or
        the process dies. No other task's statement runs on the writer connection meanwhile
        (they wait on the same limiter as `aread` and `awrite`), and another process waits
        on SQLite's write lock, so a concurrent caller sees all of it or none of it.

        Keep the block to local work: it holds the store's write lock throughout.
        """
        if _atomic.get() is self:
            yield
            return
        async with self._limiter:
            token = _atomic.set(self)
            try:
                await anyio.to_thread.run_sync(self._locked, self._begin)
                try:
                    yield
                except BaseException:
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(self._locked, self._end, "ROLLBACK")
                    raise
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self._locked, self._commit)
            finally:
                _atomic.reset(token)

    def _commit(self) -> None:
        self._end("COMMIT")
        self._counted()

    def _locked(self, fn: Callable[..., T], *args: object) -> T:
        with self._lock:
            return fn(*args)

    def close(self) -> None:
        with self._lock:
            if self._reader is not None:
                self._reader.close()
            self.conn.close()
