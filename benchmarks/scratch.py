"""Scratch stores for the replica benchmarks: a PostgreSQL database made for one run and dropped after it,
and a Redis database of the run's own, emptied after it.

The server's Redis keys have fixed prefixes (`fsm-mcp:lane:` for the vendor lanes, `fsm-mcp-limits` for the
per-caller limits) and the fake vendors one tenant id, so two runs on one Redis database would share one
pace; a run therefore takes a Redis database number nobody is using (1 to 15) and removes its keys after.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse, urlunparse


@contextmanager
def postgres_database(server: str, label: str, prefix: str = "fsm_bench_") -> Iterator[str]:
    """A fresh database on the server `server` names (any database of it: the URL's path is replaced), named
    `prefix`, `label` and a random part; its URL while the run lasts. Dropped at the end, its open connections cut."""
    import psycopg

    name = f"{prefix}{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\'')
    url = urlunparse(urlparse(server)._replace(path=f"/{name}"))
    try:
        yield url
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def redis_database(url: str, numbers: range = range(1, 16)) -> Iterator[str]:
    """An empty Redis database on the server `url` names (its /db is replaced by a free one of `numbers`, 1 to 15
    unless told); its URL while the run lasts, emptied of this run's keys at the end."""
    import redis

    where = urlparse(url)
    for db in random.sample(numbers, len(numbers)):
        mine = urlunparse(where._replace(path=f"/{db}"))
        client = redis.Redis.from_url(mine)
        if client.dbsize() == 0:
            client.set("fsm-bench:claimed", "1", ex=3600)  # seen by another run looking for a free one
            break
        client.close()
    else:
        raise RuntimeError(f"no empty Redis database among {list(numbers)} at {url}")
    try:
        yield mine
    finally:
        for key in list(client.scan_iter(match="fsm-*", count=1000)):
            client.delete(key)
        client.close()
