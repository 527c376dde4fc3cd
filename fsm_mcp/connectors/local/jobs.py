"""Jobs on the embedded store: dispatch with conflict checks, status changes (their rows are in
`store.jobs`). Booking goes through the one booking path (`connectors.booking`, steps in `local.booking`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fsm_mcp.errors import InvalidTransition
from fsm_mcp.models import Job, JobStatus
from fsm_mcp.scheduling import check_dispatchable, check_technician, check_transition
from fsm_mcp.settings import Business
from fsm_mcp.store import jobs, technicians


def dispatch(
    conn: Any, business: Business, job_id: str, technician_id: str, window: tuple[datetime, datetime] | None,
    now: datetime,
) -> Job:
    tenant = business.tenant_id
    job = jobs.load_job(conn, tenant, job_id)
    check_dispatchable(job)
    tech = technicians.load(conn, tenant, technician_id)
    start, end = window or (job.window_start, job.window_end)
    others = jobs.busy_windows(conn, tenant, [technician_id], start, end, job_id)[technician_id]
    check_technician(job, tech, (start, end), others, business.zone)
    if window:
        jobs.move_window(conn, tenant, job_id, (start, end))
    jobs.assign(conn, tenant, job_id, technician_id)
    if job.status in (JobStatus.scheduled, JobStatus.on_hold):
        jobs.record_status(conn, tenant, job_id, JobStatus.dispatched, now, f"dispatched {tech.name}")
    return jobs.load_job(conn, tenant, job_id)


def set_status(conn: Any, tenant: str, job_id: str, status: JobStatus, note: str | None, now: datetime) -> Job:
    job = jobs.load_job(conn, tenant, job_id)
    check_transition(job.status, status)
    if job.status == status:
        return job  # a retried update changes nothing
    if status in (JobStatus.dispatched, JobStatus.en_route, JobStatus.arrived, JobStatus.working) and not job.technician_ids:
        raise InvalidTransition("status: no technician is assigned yet; call dispatch_technician first")
    jobs.record_status(conn, tenant, job_id, status, now, note)
    return jobs.load_job(conn, tenant, job_id)
