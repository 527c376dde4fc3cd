"""A scratch PostgreSQL database for one benchmark run, dropped when the run ends."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def scratch_postgres(server: str = SERVER) -> Iterator[str]:
    """The URL of a new database on the server `server` names (a URL of any database on it); dropped after."""
    import psycopg

    name = f"fsm_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
