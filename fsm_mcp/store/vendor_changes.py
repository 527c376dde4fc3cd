"""SQL of vendor changes: each poll's cursor, each job as last seen at the vendor, and each invoice and payment
seen there (reported once: `invoice.created`, `payment.received`).

A vendor's modification time is kept to the microsecond in a fixed width (`stamp`), so text order is time
order and two sightings a fraction of a second apart are told apart.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from fsm_mcp.store.db import to_db


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def unstamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def cursor(conn: sqlite3.Connection, tenant: str, feed: str) -> datetime | None:
    row = conn.execute("SELECT cursor FROM vendor_change_cursors WHERE tenant_id=? AND feed=?", (tenant, feed)).fetchone()
    return None if row is None else unstamp(row["cursor"])


def save_cursor(conn: sqlite3.Connection, tenant: str, feed: str, at: datetime, now: datetime) -> None:
    """Move the cursor to `at`, never back (two pollers racing after a lease changed hands)."""
    conn.execute("INSERT INTO vendor_change_cursors (tenant_id, feed, cursor, updated_at) VALUES (?,?,?,?) "
                 "ON CONFLICT (tenant_id, feed) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at "
                 "WHERE vendor_change_cursors.cursor < excluded.cursor", (tenant, feed, stamp(at), to_db(now)))


def seen(conn: sqlite3.Connection, tenant: str, job_id: str) -> Any:
    """(modified, state) of the job as last seen, or None."""
    return conn.execute("SELECT modified, state FROM vendor_jobs_seen WHERE tenant_id=? AND job_id=?",
                        (tenant, job_id)).fetchone()


def save_seen(conn: sqlite3.Connection, tenant: str, job_id: str, modified: datetime, state: str, now: datetime) -> None:
    conn.execute("INSERT INTO vendor_jobs_seen (tenant_id, job_id, modified, state, seen_at) VALUES (?,?,?,?,?) "
                 "ON CONFLICT (tenant_id, job_id) DO UPDATE SET modified = excluded.modified, state = excluded.state, "
                 "seen_at = excluded.seen_at", (tenant, job_id, stamp(modified), state, to_db(now)))


def feed_position(conn: sqlite3.Connection, tenant: str) -> int:
    """The seq of the business's latest event (0 before any): every event recorded later has a greater one."""
    row = conn.execute("SELECT seq FROM event_counters WHERE tenant_id=?", (tenant,)).fetchone()
    return 0 if row is None else int(row["seq"])


def seen_many(conn: sqlite3.Connection, tenant: str, job_ids: list[str]) -> dict[str, tuple[str, str]]:
    """{job id: (modified, state)} of those of these jobs seen before, 500 ids to a query."""
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(job_ids), 500):
        chunk = job_ids[start:start + 500]
        rows = conn.execute(f"SELECT job_id, modified, state FROM vendor_jobs_seen WHERE tenant_id=? AND job_id IN "
                            f"({', '.join('?' for _ in chunk)})", (tenant, *chunk)).fetchall()
        found.update((r["job_id"], (r["modified"], r["state"])) for r in rows)
    return found


# ----- invoices and payments seen at the vendor (events/vendor_invoices.py) -----

def money_seen(conn: sqlite3.Connection, tenant: str, kind: str, record_ids: list[str]
               ) -> dict[str, tuple[str | None, bool, str | None]]:
    """{record id: (modified, reported, job id)} of those of these invoices or payments seen before, 500 to a query."""
    found: dict[str, tuple[str | None, bool, str | None]] = {}
    for start in range(0, len(record_ids), 500):
        chunk = record_ids[start:start + 500]
        rows = conn.execute(f"SELECT record_id, modified, reported_at, job_id FROM vendor_money_seen WHERE tenant_id=? "
                            f"AND kind=? AND record_id IN ({', '.join('?' for _ in chunk)})",
                            (tenant, kind, *chunk)).fetchall()
        found.update((r["record_id"], (r["modified"], r["reported_at"] is not None, r["job_id"])) for r in rows)
    return found


def save_money(conn: sqlite3.Connection, tenant: str, kind: str, record_id: str, job_id: str | None,
               modified: datetime | None, report: bool, now: datetime) -> bool:
    """Note the record as seen at `modified`; with `report`, mark it reported. True only for the one call that
    marks it reported first (its event is to be recorded then, and never again)."""
    at = None if modified is None else stamp(modified)
    conn.execute("INSERT INTO vendor_money_seen (tenant_id, kind, record_id, job_id, modified, seen_at) "
                 "VALUES (?,?,?,?,?,?) ON CONFLICT (tenant_id, kind, record_id) DO UPDATE SET "
                 "job_id = COALESCE(excluded.job_id, vendor_money_seen.job_id), modified = excluded.modified, "
                 "seen_at = excluded.seen_at", (tenant, kind, record_id, job_id, at, to_db(now)))
    if not report:
        return False
    cursor = conn.execute("UPDATE vendor_money_seen SET reported_at=? WHERE tenant_id=? AND kind=? AND record_id=? "
                          "AND reported_at IS NULL", (to_db(now), tenant, kind, record_id))
    return bool(cursor.rowcount == 1)


def job_known(conn: sqlite3.Connection, tenant: str, job_id: str) -> bool:
    """Seen by the job poll, or in the business's feed (booked or changed through fsm-mcp)."""
    if conn.execute("SELECT 1 FROM vendor_jobs_seen WHERE tenant_id=? AND job_id=?", (tenant, job_id)).fetchone():
        return True
    return conn.execute("SELECT 1 FROM events WHERE tenant_id=? AND subject_type='job' AND subject_id=? LIMIT 1",
                        (tenant, job_id)).fetchone() is not None


def invoicing_underway(conn: sqlite3.Connection, tenant: str, now: datetime) -> bool:
    """Whether one of fsm-mcp's own invoicing calls (`create_invoice`, the automation's) holds a live lease on its
    idempotency key: the invoice it fills may be read half filled."""
    return conn.execute("SELECT 1 FROM idempotency WHERE tenant_id=? AND tool='create_invoice' AND state='pending' "
                        "AND lease_until > ? LIMIT 1", (tenant, to_db(now))).fetchone() is not None
