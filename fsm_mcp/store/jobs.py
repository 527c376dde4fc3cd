"""The jobs' rows: a job with its customer's name, its address, its technicians and its status history;
the technicians' booked windows; a new job, a moved window, an assignment, a status change."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fsm_mcp.errors import NotFound
from fsm_mcp.inputs import JobFilter
from fsm_mcp.models import Address, Job, JobStatus, StatusChange
from fsm_mcp.scheduling import BOOKED
from fsm_mcp.store.db import from_db, new_id, placeholders, to_db

_BOOKED = tuple(s.value for s in BOOKED)
_SELECT = (
    "SELECT j.*, c.name AS customer_name, l.street, l.unit, l.city, l.state, l.postal_code FROM jobs j "
    "JOIN customers c ON c.tenant_id=j.tenant_id AND c.id=j.customer_id "
    "LEFT JOIN locations l ON l.tenant_id=j.tenant_id AND l.id=j.location_id "
)


def _load(conn: Any, tenant: str, where: str, args: Sequence[object], tail: str = "") -> list[Job]:
    rows = conn.execute(f"{_SELECT} WHERE j.tenant_id=? AND {where} {tail}", (tenant, *args)).fetchall()
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    marks = placeholders(len(ids))
    techs: dict[str, list[str]] = defaultdict(list)
    for r in conn.execute(
        f"SELECT job_id, technician_id FROM job_technicians WHERE tenant_id=? AND job_id IN ({marks}) ORDER BY technician_id",
        (tenant, *ids),
    ):
        techs[r[0]].append(r[1])
    history: dict[str, list[StatusChange]] = defaultdict(list)
    for r in conn.execute(
        f"SELECT job_id, at, status, note FROM job_events WHERE tenant_id=? AND job_id IN ({marks}) ORDER BY job_id, seq",
        (tenant, *ids),
    ):
        history[r[0]].append(StatusChange(status=JobStatus(r["status"]), at=from_db(r["at"]), note=r["note"]))
    jobs = []
    for r in rows:
        address = None
        if r["street"]:
            address = Address(street=r["street"], unit=r["unit"], city=r["city"], state=r["state"],
                              postal_code=r["postal_code"]).one_line()
        jobs.append(
            Job(
                job_id=r["id"], customer_id=r["customer_id"], customer_name=r["customer_name"],
                location_id=r["location_id"], address=address, job_type=r["job_type"], skill=r["skill"],
                summary=r["summary"], priority=r["priority"], window_start=from_db(r["window_start"]),
                window_end=from_db(r["window_end"]), status=JobStatus(r["status"]), technician_ids=techs[r["id"]],
                history=history[r["id"]], created_at=from_db(r["created_at"]),
            )
        )
    return jobs


def load_job(conn: Any, tenant: str, job_id: str) -> Job:
    jobs = _load(conn, tenant, "j.id=?", (job_id,))
    if not jobs:
        raise NotFound("job", job_id, "job_id", "Use list_jobs to find the job, or get_customer for a customer's jobs.")
    return jobs[0]


def recent_for_customer(conn: Any, tenant: str, customer_id: str, limit: int) -> list[Job]:
    """The customer's jobs, the latest window first."""
    return _load(conn, tenant, "j.customer_id=?", (customer_id,), f"ORDER BY j.window_start DESC LIMIT {int(limit)}")


def overlapping_at_place(conn: Any, tenant: str, customer_id: str, place_id: str, start: datetime,
                         end: datetime) -> list[Job]:
    """The customer's jobs at this place whose window overlaps [start, end), oldest first (any status)."""
    return _load(conn, tenant, "j.customer_id=? AND j.location_id=? AND j.window_start < ? AND j.window_end > ?",
                 (customer_id, place_id, to_db(end), to_db(start)), "ORDER BY j.created_at, j.id")


def list_jobs(conn: Any, tenant: str, query: JobFilter) -> list[Job]:
    where, args = ["1=1"], []
    if query.date_from:
        where.append("j.window_end > ?")
        args.append(to_db(query.date_from))
    if query.date_to:
        where.append("j.window_start < ?")
        args.append(to_db(query.date_to))
    if query.statuses:
        where.append(f"j.status IN ({','.join('?' * len(query.statuses))})")
        args.extend(s.value for s in query.statuses)
    if query.customer_id:
        where.append("j.customer_id = ?")
        args.append(query.customer_id)
    if query.technician_id:
        where.append("j.id IN (SELECT job_id FROM job_technicians WHERE tenant_id=j.tenant_id AND technician_id=?)")
        args.append(query.technician_id)
    return _load(conn, tenant, " AND ".join(where), args, f"ORDER BY j.window_start, j.id LIMIT {int(query.limit)}")


def busy_windows(
    conn: Any, tenant: str, technician_ids: Sequence[str], start: datetime, end: datetime,
    exclude_job: str | None = None,
) -> dict[str, list[tuple[datetime, datetime, str]]]:
    """Each technician's booked (window, job id) overlapping [start, end)."""
    busy: dict[str, list[tuple[datetime, datetime, str]]] = defaultdict(list)
    if not technician_ids:
        return busy
    marks = placeholders(len(technician_ids))
    for r in conn.execute(
        f"SELECT t.technician_id, j.id, j.window_start, j.window_end FROM job_technicians t "
        f"JOIN jobs j ON j.tenant_id=t.tenant_id AND j.id=t.job_id WHERE t.tenant_id=? AND t.technician_id IN ({marks}) "
        f"AND j.status IN ({','.join('?' * len(_BOOKED))}) AND j.window_start < ? AND j.window_end > ? AND j.id IS NOT ?",
        (tenant, *technician_ids, *_BOOKED, to_db(end), to_db(start), exclude_job),
    ):
        busy[r[0]].append((from_db(r["window_start"]), from_db(r["window_end"]), r["id"]))
    return busy


def insert_job(conn: Any, tenant: str, customer_id: str, place_id: str, job_type: str, skill: str | None,
               summary: str, priority: str, window: tuple[datetime, datetime], now: datetime) -> str:
    """A new scheduled job, its first status recorded; its id."""
    job_id = new_id("job")
    start, end = window
    conn.execute(
        "INSERT INTO jobs (tenant_id, id, customer_id, location_id, job_type, skill, summary, priority, "
        "window_start, window_end, status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (tenant, job_id, customer_id, place_id, job_type, skill, summary, priority, to_db(start), to_db(end),
         JobStatus.scheduled.value, to_db(now), to_db(now)),
    )
    record_status(conn, tenant, job_id, JobStatus.scheduled, now, None)
    return job_id


def insert_past_job(conn: Any, tenant: str, customer_id: str, place_id: str, job_type: str, skill: str | None,
                    summary: str, priority: str, window: tuple[datetime, datetime], status: JobStatus,
                    note: str | None) -> str:
    """A job from before, made at its window's start and ending in `status` at its end (one history entry, as
    the demo's service history has it); its id."""
    job_id = new_id("job")
    start, end = window
    conn.execute(
        "INSERT INTO jobs (tenant_id, id, customer_id, location_id, job_type, skill, summary, priority, "
        "window_start, window_end, status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (tenant, job_id, customer_id, place_id, job_type, skill, summary, priority, to_db(start), to_db(end),
         status.value, to_db(start), to_db(start)),
    )
    conn.execute("INSERT INTO job_events (tenant_id, job_id, seq, at, status, note) VALUES (?,?,?,?,?,?)",
                 (tenant, job_id, 1, to_db(end), status.value, note))
    return job_id


def record_status(conn: Any, tenant: str, job_id: str, status: JobStatus, at: datetime, note: str | None) -> None:
    seq = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM job_events WHERE tenant_id=? AND job_id=?", (tenant, job_id)).fetchone()[0]
    conn.execute(
        "INSERT INTO job_events (tenant_id, job_id, seq, at, status, note) VALUES (?,?,?,?,?,?)",
        (tenant, job_id, seq, to_db(at), status.value, note),
    )
    conn.execute("UPDATE jobs SET status=?, updated_at=? WHERE tenant_id=? AND id=?", (status.value, to_db(at), tenant, job_id))


def move_window(conn: Any, tenant: str, job_id: str, window: tuple[datetime, datetime]) -> None:
    start, end = window
    conn.execute("UPDATE jobs SET window_start=?, window_end=? WHERE tenant_id=? AND id=?",
                 (to_db(start), to_db(end), tenant, job_id))


def assign(conn: Any, tenant: str, job_id: str, technician_id: str) -> None:
    """The technician on the job (already there: nothing changes)."""
    conn.execute("INSERT INTO job_technicians (tenant_id, job_id, technician_id) VALUES (?,?,?) ON CONFLICT DO NOTHING",
                 (tenant, job_id, technician_id))
