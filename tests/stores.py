"""The stores a test may run on: SQLite in the test's own folder, and PostgreSQL in a schema of its own.

PostgreSQL is the database FSM_MCP_TEST_POSTGRES names, else a scratch database this session makes on the
machine's server (postgresql://postgres@127.0.0.1:5432) and drops at the end; every test gets a fresh schema
in it, reached through the URL's search_path. Where PostgreSQL is not reachable those tests skip, saying so.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

GIVEN = os.environ.get("FSM_MCP_TEST_POSTGRES")  # a database made for this run (.ci/run makes and drops one)
SERVER = GIVEN or "postgresql://postgres@127.0.0.1:5432/postgres"
KINDS = ["sqlite", "postgresql"]


class _Scratch:
    """The session's scratch database, made on first use."""

    def __init__(self) -> None:
        self.url: str | None = None
        self.why_not: str | None = None
        self.name = f"fsm_mcp_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    def database(self) -> str:
        if self.url is None and self.why_not is None:
            try:
                import psycopg

                with psycopg.connect(SERVER, autocommit=True, connect_timeout=3) as conn:
                    if not GIVEN:
                        conn.execute(f'CREATE DATABASE "{self.name}" TEMPLATE template0 ENCODING \'UTF8\'')
                self.url = GIVEN or SERVER.rsplit("/", 1)[0] + f"/{self.name}"
            except Exception as exc:  # not installed, not running, no rights: the PostgreSQL runs skip
                self.why_not = f"PostgreSQL not reachable at {SERVER} ({type(exc).__name__}: {exc}); set FSM_MCP_TEST_POSTGRES"
        if self.why_not:
            pytest.skip(self.why_not)
        assert self.url is not None
        return self.url

    def schema(self) -> str:
        """A fresh, empty schema; the URL that works in it."""
        import psycopg

        url = self.database()
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return f"{url}?options={quote(f'-csearch_path={name}')}"

    def drop(self) -> None:
        if self.url is None or GIVEN:  # a given database is its maker's to drop
            return
        import psycopg

        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


SCRATCH = _Scratch()


def target(kind: str, folder: Path, name: str = "fsm.db") -> Path | str:
    """Where a test's store lives: a file in its folder, or a fresh PostgreSQL schema."""
    return folder / name if kind == "sqlite" else SCRATCH.schema()


class Inspector:
    """Direct reads and writes of a test's store, behind the service's back (to check or to corrupt it)."""

    def __init__(self, where: Path | str) -> None:
        from fsm_mcp.store import is_postgres

        self.postgres = is_postgres(where)
        if self.postgres:
            import psycopg

            from fsm_mcp.store.postgres import PgConnection

            self._raw: Any = psycopg.connect(str(where), autocommit=True, cursor_factory=psycopg.ClientCursor)
            self._conn: Any = PgConnection(self._raw)
        else:
            import sqlite3

            self._raw = self._conn = sqlite3.connect(where)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        return self._conn.executemany(sql, rows)

    def commit(self) -> None:
        if not self.postgres:
            self._raw.commit()

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> Inspector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.commit()
        self.close()


def connect(where: Path | str) -> Inspector:
    return Inspector(where)


def scratch_cleanup() -> Iterator[None]:
    yield
    SCRATCH.drop()
