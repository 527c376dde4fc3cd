"""The system of record: SQLite embedded by default (`db.py`), PostgreSQL for several replicas (`postgres.py`).

Both run the same SQL functions (`fn(conn, ...)`, written in the subset both databases speak: see
`dialect.py`) through the same surface: `read`/`write`/`snapshot`/`peek`, their async forms, and `atomic`
for one unit of work spanning several writes.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from pathlib import Path
from typing import Protocol, TypeVar

from fsm_mcp.clock import Clock
from fsm_mcp.errors import FsmError
from fsm_mcp.store.db import Database

T = TypeVar("T")


class Store(Protocol):
    """What the services and connectors use of a store; `fn` is a SQL function taking a DB-API connection."""

    clock: Clock
    path: str  # where it is, as messages may show it
    dialect: str  # "sqlite" | "postgresql"

    def read(self, fn: Callable[..., T], *args: object) -> T: ...
    def write(self, fn: Callable[..., T], *args: object) -> T: ...
    def snapshot(self, fn: Callable[..., T], *args: object) -> T: ...
    def peek(self, sql: str, args: tuple[object, ...]) -> tuple[object, ...] | None: ...
    async def asnapshot(self, fn: Callable[..., T], *args: object) -> T: ...
    async def apeek(self, sql: str, args: tuple[object, ...]) -> tuple[object, ...] | None: ...
    async def aread(self, fn: Callable[..., T], *args: object) -> T: ...
    async def ascan(self, fn: Callable[..., T], *args: object) -> T: ...
    async def awrite(self, fn: Callable[..., T], *args: object) -> T: ...
    def atomic(self) -> AbstractAsyncContextManager[None]: ...
    def bulk(self) -> AbstractContextManager[None]: ...
    def analyze(self) -> None: ...
    def close(self) -> None: ...


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(target: object) -> bool:
    return isinstance(target, str) and target.startswith(POSTGRES_SCHEMES)


def open_store(target: str | Path, clock: Clock | None = None) -> Store:
    """The store at `target`: a file path (SQLite) or a `postgresql://` URL."""
    if not is_postgres(target):
        return Database(target, clock)
    try:
        from fsm_mcp.store.postgres import PostgresDatabase
    except ImportError as exc:
        raise FsmError(f"FSM_MCP_DB is a PostgreSQL URL but its driver is not installed ({exc.name}): "
                       "pip install 'fsm-mcp[postgresql]'") from None
    return PostgresDatabase(str(target), clock)


def shown(target: str | Path) -> str:
    """The store's location as messages may show it (a URL without its password)."""
    if is_postgres(target):
        from fsm_mcp.store.postgres import redacted

        return redacted(str(target))
    return str(target)
