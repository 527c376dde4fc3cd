"""SQL of the automations: each one's cursor in its business's feed, and each completed job's work.

A job's row records the automation's recovery points: the lines chosen to bill (`lines`, from the completion or
the price list: chosen once, so a repeat bills the same request under the same idempotency key), then what
billing came to (`billed`), then the follow-up. Each write is conditional, so a repeat changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fsm_mcp.store.db import to_db


def cursor(conn: Any, tenant: str, name: str) -> int | None:
    row = conn.execute("SELECT seq FROM automation_cursors WHERE tenant_id=? AND name=?", (tenant, name)).fetchone()
    return None if row is None else int(row["seq"])


def start(conn: Any, tenant: str, name: str, seq: int) -> None:
    """Place a new automation at `seq` (the business's newest event); one already placed stays where it is."""
    conn.execute("INSERT INTO automation_cursors (tenant_id, name, seq) VALUES (?,?,?) "
                 "ON CONFLICT (tenant_id, name) DO NOTHING", (tenant, name, seq))


def advance(conn: Any, tenant: str, name: str, seq: int) -> None:
    """Move the cursor past `seq`; never back."""
    conn.execute("INSERT INTO automation_cursors (tenant_id, name, seq) VALUES (?,?,?) "
                 "ON CONFLICT (tenant_id, name) DO UPDATE SET seq = excluded.seq "
                 "WHERE automation_cursors.seq < excluded.seq", (tenant, name, seq))


def job(conn: Any, tenant: str, job_id: str) -> Any:
    return conn.execute("SELECT * FROM automation_jobs WHERE tenant_id=? AND job_id=?", (tenant, job_id)).fetchone()


def set_lines(conn: Any, tenant: str, job_id: str, lines: str, source: str, now: datetime, replace: bool) -> None:
    """The work to bill. `replace` (a completion's own lines): over earlier ones until billing has acted;
    otherwise (the price list) only where none are recorded yet."""
    keep = "automation_jobs.billed IS NULL" if replace else "automation_jobs.lines IS NULL"
    conn.execute("INSERT INTO automation_jobs (tenant_id, job_id, lines, lines_from, updated_at) VALUES (?,?,?,?,?) "
                 "ON CONFLICT (tenant_id, job_id) DO UPDATE SET lines = excluded.lines, "
                 f"lines_from = excluded.lines_from, updated_at = excluded.updated_at WHERE {keep}",
                 (tenant, job_id, lines, source, to_db(now)))


def settle(conn: Any, tenant: str, job_id: str, billed: str, invoice_id: str | None, customer_id: str | None,
           follow_up_at: datetime | None, now: datetime) -> bool:
    """Record what billing came to and when the follow-up is due, once; False if it was recorded before."""
    conn.execute("INSERT INTO automation_jobs (tenant_id, job_id, updated_at) VALUES (?,?,?) "
                 "ON CONFLICT (tenant_id, job_id) DO NOTHING", (tenant, job_id, to_db(now)))
    cursor = conn.execute(
        "UPDATE automation_jobs SET billed=?, invoice_id=?, customer_id=?, follow_up_at=?, updated_at=? "
        "WHERE tenant_id=? AND job_id=? AND billed IS NULL",
        (billed, invoice_id, customer_id, None if follow_up_at is None else to_db(follow_up_at), to_db(now), tenant, job_id))
    return bool(cursor.rowcount == 1)


def due_follow_ups(conn: Any, tenant: str, now: datetime, limit: int) -> list[Any]:
    return list(conn.execute(
        "SELECT job_id, customer_id, follow_up_at FROM automation_jobs WHERE tenant_id=? AND followed_up_at IS NULL "
        "AND follow_up_at IS NOT NULL AND follow_up_at <= ? ORDER BY follow_up_at, job_id LIMIT ?",
        (tenant, to_db(now), limit)).fetchall())


def followed_up(conn: Any, tenant: str, job_id: str, now: datetime) -> bool:
    """Mark the job's follow-up recorded; False if it was before (its event must then not be recorded again)."""
    cursor = conn.execute("UPDATE automation_jobs SET followed_up_at=?, updated_at=? "
                          "WHERE tenant_id=? AND job_id=? AND followed_up_at IS NULL",
                          (to_db(now), to_db(now), tenant, job_id))
    return bool(cursor.rowcount == 1)
