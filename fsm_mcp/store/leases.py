"""Leases: background work (a vendor's directory sync, later the event pollers) done by one process at a time
among every process sharing the store, and taken over when that process dies.

A lease is a row naming its holder and when it lapses. The holder renews it while it works; another process
takes it only once it has lapsed, so a replica killed mid-sync hands the work on after at most one `ttl`.
Taking and renewing are one conditional upsert (standard SQL, as on PostgreSQL), so two processes racing
for a free lease cannot both win: the store's write lock orders them and the second finds it held.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import uuid
from datetime import datetime, timedelta

from fsm_mcp.store import Store
from fsm_mcp.store.db import to_db

# This process, as lease holders know it: readable in the table, unique even across restarts of one pid.
PROCESS = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _take(conn: sqlite3.Connection, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    cursor = conn.execute(
        "INSERT INTO leases (name, holder, expires_at) VALUES (?,?,?) "
        "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
        "WHERE leases.holder = excluded.holder OR leases.expires_at <= ?",
        (name, holder, to_db(now + ttl), to_db(now)),
    )
    return cursor.rowcount == 1


def _release(conn: sqlite3.Connection, name: str, holder: str) -> None:
    conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))


class Lease:
    """The right to do the background work called `name`, for `ttl` at a time."""

    def __init__(self, db: Store, name: str, ttl: timedelta, holder: str = PROCESS) -> None:
        self.db, self.name, self.ttl, self.holder = db, name, ttl, holder

    async def take(self) -> bool:
        """Take the lease, or renew it if this holder has it; False while another holder's has not lapsed."""
        return await self.db.awrite(_take, self.name, self.holder, self.db.clock.now(), self.ttl)

    async def release(self) -> None:
        """Give the lease up at once (a clean shutdown), so another process need not wait for it to lapse."""
        await self.db.awrite(_release, self.name, self.holder)
