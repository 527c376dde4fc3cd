"""Jobs: booking with duplicate protection, dispatch with conflict checks, status changes."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from fsm_mcp.connectors.base import Booking, BookingRequest, JobFilter
from fsm_mcp.connectors.local import technicians
from fsm_mcp.directory import booking, customers
from fsm_mcp.errors import InvalidTransition, NotFound
from fsm_mcp.identity.phones import parse_phone
from fsm_mcp.inputs import AddressIn
from fsm_mcp.models import Address, Job, JobStatus, StatusChange
from fsm_mcp.scheduling import BOOKED, check_dispatchable, check_technician, check_transition
from fsm_mcp.settings import Business
from fsm_mcp.store.db import from_db, new_id, placeholders, to_db

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


def _event(conn: sqlite3.Connection, tenant: str, job_id: str, status: JobStatus, at: datetime, note: str | None) -> None:
    seq = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM job_events WHERE tenant_id=? AND job_id=?", (tenant, job_id)).fetchone()[0]
    conn.execute(
        "INSERT INTO job_events (tenant_id, job_id, seq, at, status, note) VALUES (?,?,?,?,?,?)",
        (tenant, job_id, seq, to_db(at), status.value, note),
    )
    conn.execute("UPDATE jobs SET status=?, updated_at=? WHERE tenant_id=? AND id=?", (status.value, to_db(at), tenant, job_id))


def _resolve_customer(conn: sqlite3.Connection, business: Business, request: BookingRequest, now: datetime) -> tuple[str, bool]:
    found, query = booking.attach(conn, business, request)
    if found is not None:
        return found, False
    details = request.customer
    assert query is not None and details is not None
    phone = parse_phone(details.phone, business.country) if details.phone else None
    customer_id = customers.insert_customer(conn, business.tenant_id, now, name=details.name,
                                            phones=[phone] if phone else [], emails=sorted(query.emails))
    return customer_id, True


def _resolve_location(
    conn: sqlite3.Connection, tenant: str, customer_id: str, address: AddressIn | None, now: datetime
) -> tuple[str, bool]:
    """The customer's location for this job, and whether it had to be added."""
    found = booking.pick_location(customers.load_locations(conn, tenant, customer_id), address)
    if found is not None:
        return found, False
    assert address is not None
    return customers.insert_location(conn, tenant, customer_id, address, now), True


def _learn_contacts(
    conn: sqlite3.Connection, business: Business, request: BookingRequest, customer_id: str
) -> list[str]:
    """The caller's number and e-mail, added to the existing customer they were attached to when missing,
    so that the next call from that number is recognised by caller ID alone."""
    phones, emails = booking.caller_contacts(business, request)
    added = []
    for table, column, values in (("customer_phones", "e164", phones), ("customer_emails", "email", emails)):
        for value in sorted(values):  # the primary key ignores what the record already holds
            if conn.execute(f"INSERT OR IGNORE INTO {table} (tenant_id, customer_id, {column}) VALUES (?,?,?)",
                            (business.tenant_id, customer_id, value)).rowcount:
                added.append(value)
    return added


def book(conn: sqlite3.Connection, business: Business, request: BookingRequest, now: datetime) -> Booking:
    tenant = business.tenant_id
    customer_id, created = _resolve_customer(conn, business, request, now)
    learned = [] if created else _learn_contacts(conn, business, request, customer_id)
    location_id, new_location = _resolve_location(conn, tenant, customer_id, request.address, now)
    if created or new_location or learned:
        customers.reindex(conn, tenant, [customer_id])
    skill = business.skill_for(request.job_type)
    start, end = request.window
    if not request.allow_duplicate:
        row = conn.execute(
            f"SELECT id FROM jobs WHERE tenant_id=? AND customer_id=? AND location_id IS ? AND skill=? "
            f"AND status IN ({','.join('?' * len(_BOOKED))}, 'on_hold') AND window_start < ? AND window_end > ? "
            "ORDER BY created_at LIMIT 1",
            (tenant, customer_id, location_id, skill, *_BOOKED, to_db(end), to_db(start)),
        ).fetchone()
        if row:
            return Booking(job=load_job(conn, tenant, row[0]), customer_created=False, already_booked=True,
                           contacts_added=learned)
    job_id = new_id("job")
    conn.execute(
        "INSERT INTO jobs (tenant_id, id, customer_id, location_id, job_type, skill, summary, priority, window_start, "
        "window_end, status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (tenant, job_id, customer_id, location_id, request.job_type.strip(), skill, request.summary.strip(),
         request.priority, to_db(start), to_db(end), JobStatus.scheduled.value, to_db(now), to_db(now)),
    )
    _event(conn, tenant, job_id, JobStatus.scheduled, now, None)
    if request.technician_id:
        return Booking(job=dispatch(conn, business, job_id, request.technician_id, None, now), customer_created=created,
                       already_booked=False, contacts_added=learned)
    return Booking(job=load_job(conn, tenant, job_id), customer_created=created, already_booked=False,
                   contacts_added=learned)


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
        "INSERT OR IGNORE INTO job_technicians (tenant_id, job_id, technician_id) VALUES (?,?,?)",
        (tenant, job_id, technician_id),
    )
    if job.status in (JobStatus.scheduled, JobStatus.on_hold):
        _event(conn, tenant, job_id, JobStatus.dispatched, now, f"dispatched {tech.name}")
    return load_job(conn, tenant, job_id)


def set_status(conn: sqlite3.Connection, tenant: str, job_id: str, status: JobStatus, note: str | None, now: datetime) -> Job:
    job = load_job(conn, tenant, job_id)
    check_transition(job.status, status)
    if job.status == status:
        return job  # a retried update changes nothing
    if status in (JobStatus.dispatched, JobStatus.en_route, JobStatus.arrived, JobStatus.working) and not job.technician_ids:
        raise InvalidTransition("status: no technician is assigned yet; call dispatch_technician first")
    _event(conn, tenant, job_id, status, now, note)
    return load_job(conn, tenant, job_id)
