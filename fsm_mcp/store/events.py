"""SQL of the outbox (events) and of webhooks out (subscribers, deliveries).

An event's `seq` is taken from its business's counter row in the transaction that writes it: the
UPDATE locks that row until the transaction ends, so within a business events commit in `seq` order
(on PostgreSQL as on SQLite, where the write lock orders them anyway) and a reader that has seen
`seq` n never later finds a committed event below it. The `id` (time-sortable, `evt_...`) is what
callers hold: the cursor of `list_changes` and a webhook's `webhook-id`.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from fsm_mcp.store.db import new_id, placeholders, to_db

EVENT_COLUMNS = "id, seq, type, subject_type, subject_id, at, data"


def when(moment: datetime) -> str:
    """A delivery's next attempt, to the microsecond (`to_db` keeps seconds, which would cut short a backoff
    under a second); fixed width, so text order is time order here too."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def insert(conn: sqlite3.Connection, tenant: str, now: datetime, type_: str, subject_type: str, subject_id: str,
           data: str) -> tuple[str, int]:
    """One event; returns its id and seq. Run it in the transaction of the change it reports."""
    conn.execute("INSERT INTO event_counters (tenant_id, seq) VALUES (?, 0) ON CONFLICT (tenant_id) DO NOTHING",
                 (tenant,))
    conn.execute("UPDATE event_counters SET seq = seq + 1 WHERE tenant_id=?", (tenant,))
    seq = int(conn.execute("SELECT seq FROM event_counters WHERE tenant_id=?", (tenant,)).fetchone()[0])
    event_id = new_id("evt")
    conn.execute("INSERT INTO events (tenant_id, id, seq, type, subject_type, subject_id, at, data) "
                 "VALUES (?,?,?,?,?,?,?,?)", (tenant, event_id, seq, type_, subject_type, subject_id, to_db(now), data))
    return event_id, seq


def hold(conn: sqlite3.Connection, tenant: str) -> None:
    """Lock the business's counter row until the transaction ends, as `insert` does: a transaction that reads the
    feed before it writes sees every event committed before it (on SQLite, BEGIN IMMEDIATE does it already)."""
    conn.execute("INSERT INTO event_counters (tenant_id, seq) VALUES (?, 0) ON CONFLICT (tenant_id) DO NOTHING",
                 (tenant,))
    conn.execute("UPDATE event_counters SET seq = seq WHERE tenant_id=?", (tenant,))


def seq_of(conn: sqlite3.Connection, tenant: str, event_id: str) -> int | None:
    row = conn.execute("SELECT seq FROM events WHERE tenant_id=? AND id=?", (tenant, event_id)).fetchone()
    return None if row is None else int(row[0])


def after(conn: sqlite3.Connection, tenant: str, seq: int, limit: int) -> list[Any]:
    """Events of the business after `seq`, oldest first."""
    return conn.execute(f"SELECT {EVENT_COLUMNS} FROM events WHERE tenant_id=? AND seq > ? ORDER BY seq LIMIT ?",
                        (tenant, seq, limit)).fetchall()


def last_of_subject(conn: sqlite3.Connection, tenant: str, subject_type: str, subject_id: str) -> Any:
    return conn.execute(f"SELECT {EVENT_COLUMNS} FROM events WHERE tenant_id=? AND subject_type=? AND subject_id=? "
                        "ORDER BY seq DESC LIMIT 1", (tenant, subject_type, subject_id)).fetchone()


def oldest_seq(conn: sqlite3.Connection, tenant: str) -> int | None:
    row = conn.execute("SELECT MIN(seq) FROM events WHERE tenant_id=?", (tenant,)).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def prune(conn: sqlite3.Connection, tenant: str, before: datetime) -> int:
    """Forget the business's events older than `before`, except those a webhook delivery still waits on."""
    cursor = conn.execute(
        "DELETE FROM events WHERE tenant_id=? AND at < ? AND id NOT IN "
        "(SELECT event_id FROM webhook_deliveries WHERE tenant_id=? AND state='pending')",
        (tenant, to_db(before), tenant))
    return int(cursor.rowcount or 0)


# --- webhook subscribers ---------------------------------------------------------------------------------------

def add_subscriber(conn: sqlite3.Connection, tenant: str, now: datetime, url: str, secret: str, types: str) -> str:
    """A subscriber starts at the business's newest event: it hears of changes from now on."""
    row = conn.execute("SELECT seq FROM event_counters WHERE tenant_id=?", (tenant,)).fetchone()
    subscriber_id = new_id("whk")
    conn.execute("INSERT INTO webhook_subscribers (tenant_id, id, url, secret, types, created_at, disabled_at, "
                 "fanned_seq) VALUES (?,?,?,?,?,?,NULL,?)",
                 (tenant, subscriber_id, url, secret, types, to_db(now), int(row[0]) if row else 0))
    return subscriber_id


def subscribers(conn: sqlite3.Connection, tenant: str | None, include_disabled: bool = False) -> list[Any]:
    where, args = ["1=1"], []  # built here: PostgreSQL cannot type a bare `? IS NULL`
    if tenant is not None:
        where.append("tenant_id=?")
        args.append(tenant)
    if not include_disabled:
        where.append("disabled_at IS NULL")
    return conn.execute(f"SELECT * FROM webhook_subscribers WHERE {' AND '.join(where)} ORDER BY tenant_id, id",
                        args).fetchall()


def disable_subscriber(conn: sqlite3.Connection, tenant: str, subscriber_id: str, now: datetime) -> bool:
    cursor = conn.execute("UPDATE webhook_subscribers SET disabled_at=? WHERE tenant_id=? AND id=? AND disabled_at IS NULL",
                          (to_db(now), tenant, subscriber_id))
    if cursor.rowcount == 1:
        conn.execute("UPDATE webhook_deliveries SET state='dead', last_error='subscriber removed' "
                     "WHERE tenant_id=? AND subscriber_id=? AND state='pending'", (tenant, subscriber_id))
    return cursor.rowcount == 1


# --- deliveries ------------------------------------------------------------------------------------------------

def fan_out(conn: sqlite3.Connection, subscriber: Any, rows: list[Any], wanted: list[bool], now: datetime) -> None:
    """Queue a delivery of each wanted event in `rows` to `subscriber`, and move its fan-out mark past them all."""
    for row, want in zip(rows, wanted, strict=True):
        if want:
            conn.execute(
                "INSERT INTO webhook_deliveries (tenant_id, subscriber_id, event_id, seq, subject, state, attempts, "
                "next_at, created_at) VALUES (?,?,?,?,?, 'pending', 0, ?, ?) "
                "ON CONFLICT (subscriber_id, event_id) DO NOTHING",
                (subscriber["tenant_id"], subscriber["id"], row["id"], row["seq"],
                 f"{row['subject_type']}:{row['subject_id']}", when(now), to_db(now)))
    if rows:
        conn.execute("UPDATE webhook_subscribers SET fanned_seq=? WHERE id=? AND fanned_seq < ?",
                     (rows[-1]["seq"], subscriber["id"], rows[-1]["seq"]))


def due(conn: sqlite3.Connection, subscriber_id: str, now: datetime, limit: int) -> list[Any]:
    """The subscriber's pending deliveries that are due and first in line for their subject (an earlier pending
    delivery of the same subject holds the later ones back), with their events, oldest first."""
    return conn.execute(
        "SELECT d.event_id, d.seq, d.subject, d.attempts, d.created_at, e.type, e.subject_type, e.subject_id, e.at, "
        "e.data FROM webhook_deliveries d JOIN events e ON e.tenant_id=d.tenant_id AND e.id=d.event_id "
        "WHERE d.subscriber_id=? AND d.state='pending' AND d.next_at <= ? AND NOT EXISTS ("
        "SELECT 1 FROM webhook_deliveries p WHERE p.subscriber_id=d.subscriber_id AND p.subject=d.subject "
        "AND p.state='pending' AND p.seq < d.seq) ORDER BY d.seq LIMIT ?",
        (subscriber_id, when(now), limit)).fetchall()


def next_due(conn: sqlite3.Connection, subscriber_id: str) -> str | None:
    row = conn.execute("SELECT MIN(next_at) FROM webhook_deliveries WHERE subscriber_id=? AND state='pending'",
                       (subscriber_id,)).fetchone()
    return None if row is None else row[0]


def delivered(conn: sqlite3.Connection, subscriber_id: str, event_id: str, now: datetime, status: int) -> None:
    conn.execute("UPDATE webhook_deliveries SET state='done', attempts=attempts+1, done_at=?, last_status=?, "
                 "last_error=NULL WHERE subscriber_id=? AND event_id=?", (to_db(now), status, subscriber_id, event_id))


def failed(conn: sqlite3.Connection, subscriber_id: str, event_id: str, status: int | None, error: str,
           next_at: datetime | None) -> None:
    """A failed attempt: tried again at `next_at`, or, with None, dead (the dead-letter list)."""
    if next_at is None:
        conn.execute("UPDATE webhook_deliveries SET state='dead', attempts=attempts+1, last_status=?, last_error=? "
                     "WHERE subscriber_id=? AND event_id=?", (status, error, subscriber_id, event_id))
    else:
        conn.execute("UPDATE webhook_deliveries SET attempts=attempts+1, next_at=?, last_status=?, last_error=? "
                     "WHERE subscriber_id=? AND event_id=?", (when(next_at), status, error, subscriber_id, event_id))


def deliveries(conn: sqlite3.Connection, tenant: str, state: str | None, subscriber_id: str | None,
               limit: int) -> list[Any]:
    where, args = ["d.tenant_id=?"], [tenant]
    for column, value in (("d.state", state), ("d.subscriber_id", subscriber_id)):
        if value is not None:
            where.append(f"{column}=?")
            args.append(value)
    return conn.execute(
        "SELECT d.*, e.type FROM webhook_deliveries d JOIN events e ON e.tenant_id=d.tenant_id AND e.id=d.event_id "
        f"WHERE {' AND '.join(where)} ORDER BY d.seq LIMIT ?", (*args, limit)).fetchall()


def redeliver(conn: sqlite3.Connection, tenant: str, subscriber_id: str, event_ids: list[str] | None,
              now: datetime) -> int:
    """Queue dead deliveries again (the named events, or every dead one of the subscriber), attempts from zero."""
    only = f" AND event_id IN ({placeholders(len(event_ids))})" if event_ids else ""
    cursor = conn.execute(
        "UPDATE webhook_deliveries SET state='pending', attempts=0, next_at=?, created_at=?, last_error=NULL "
        f"WHERE tenant_id=? AND subscriber_id=? AND state='dead'{only}",
        (when(now), to_db(now), tenant, subscriber_id, *(event_ids or [])))
    return int(cursor.rowcount or 0)


def prune_deliveries(conn: sqlite3.Connection, tenant: str, before: datetime) -> None:
    conn.execute("DELETE FROM webhook_deliveries WHERE tenant_id=? AND state='done' AND done_at < ?",
                 (tenant, to_db(before)))



def counter(conn: sqlite3.Connection, tenant: str) -> int:
    """The business's last seq given out (0 before its first event)."""
    row = conn.execute("SELECT seq FROM event_counters WHERE tenant_id=?", (tenant,)).fetchone()
    return 0 if row is None else int(row[0])


def newest(conn: sqlite3.Connection, tenant: str, limit: int) -> list[Any]:
    rows = conn.execute(f"SELECT {EVENT_COLUMNS} FROM events WHERE tenant_id=? ORDER BY seq DESC LIMIT ?",
                        (tenant, limit)).fetchall()
    return list(reversed(rows))
