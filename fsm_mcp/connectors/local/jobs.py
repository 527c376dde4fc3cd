"""Jobs on the embedded store: reading them, dispatch with conflict checks, status changes. Booking
goes through the one booking path (`connectors.booking`, steps in `local.booking`)."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from fsm_mcp.connectors.base import JobFilter
from fsm_mcp.connectors.local import technicians
from fsm_mcp.errors import InvalidTransition, NotFound
from fsm_mcp.models import Address, Job, JobStatus, StatusChange
from fsm_mcp.scheduling import BOOKED, check_dispatchable, check_technician, check_transition
from fsm_mcp.settings import Business
from fsm_mcp.store.db import from_db, placeholders, to_db

_BOOKED = tuple(s.value for s in BOOKED)
_SELECT = (
    "SELECT j.*, c.name AS customer_name, l.street, l.unit, l.city, l.state, l.postal_code FROM jobs j "
    "JOIN customers c ON c.tenant_id=j.tenant_id AND c.id=j.customer_id "
    "LEFT JOIN locations l ON l.tenant_id=j.tenant_id AND l.id=j.location_id "
)


def load_jobs(conn: sqlite3.Connection, tenant: str, where: str, args: Sequence[object], tail: str = "") -> list[Job]:
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


def load_job(conn: sqlite3.Connection, tenant: str, job_id: str) -> Job:
    jobs = load_jobs(conn, tenant, "j.id=?", (job_id,))
    if not jobs:
        raise NotFound("job", job_id, "job_id", "Use list_jobs to find the job, or get_customer for a customer's jobs.")
    return jobs[0]


def list_jobs(conn: sqlite3.Connection, tenant: str, query: JobFilter) -> list[Job]:
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
    return load_jobs(conn, tenant, " AND ".join(where), args, f"ORDER BY j.window_start, j.id LIMIT {int(query.limit)}")


def record_status(conn: sqlite3.Connection, tenant: str, job_id: str, status: JobStatus, at: datetime, note: str | None) -> None:
    seq = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM job_events WHERE tenant_id=? AND job_id=?", (tenant, job_id)).fetchone()[0]
    conn.execute(
        "INSERT INTO job_events (tenant_id, job_id, seq, at, status, note) VALUES (?,?,?,?,?,?)",
        (tenant, job_id, seq, to_db(at), status.value, note),
    )
    conn.execute("UPDATE jobs SET status=?, updated_at=? WHERE tenant_id=? AND id=?", (status.value, to_db(at), tenant, job_id))


def busy_windows(
    conn: sqlite3.Connection, tenant: str, technician_ids: Sequence[str], start: datetime, end: datetime,
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


def dispatch(
    conn: sqlite3.Connection, business: Business, job_id: str, technician_id: str,
    window: tuple[datetime, datetime] | None, now: datetime,
) -> Job:
    tenant = business.tenant_id
    job = load_job(conn, tenant, job_id)
    check_dispatchable(job)
    tech = technicians.load(conn, tenant, technician_id)
    start, end = window or (job.window_start, job.window_end)
    others = busy_windows(conn, tenant, [technician_id], start, end, job_id)[technician_id]
    check_technician(job, tech, (start, end), others, business.zone)
    if window:
        conn.execute(
            "UPDATE jobs SET window_start=?, window_end=? WHERE tenant_id=? AND id=?",
            (to_db(start), to_db(end), tenant, job_id),
        )
    conn.execute(
        "INSERT INTO job_technicians (tenant_id, job_id, technician_id) VALUES (?,?,?) ON CONFLICT DO NOTHING",
        (tenant, job_id, technician_id),
    )
    if job.status in (JobStatus.scheduled, JobStatus.on_hold):
        record_status(conn, tenant, job_id, JobStatus.dispatched, now, f"dispatched {tech.name}")
    return load_job(conn, tenant, job_id)


def set_status(conn: sqlite3.Connection, tenant: str, job_id: str, status: JobStatus, note: str | None, now: datetime) -> Job:
    job = load_job(conn, tenant, job_id)
    check_transition(job.status, status)
    if job.status == status:
        return job  # a retried update changes nothing
    if status in (JobStatus.dispatched, JobStatus.en_route, JobStatus.arrived, JobStatus.working) and not job.technician_ids:
        raise InvalidTransition("status: no technician is assigned yet; call dispatch_technician first")
    record_status(conn, tenant, job_id, status, now, note)
    return load_job(conn, tenant, job_id)
