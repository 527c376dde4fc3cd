"""What each change reports: the events a service records after its write, decided from the write's result
and the subject's last event (so a retried write that changed nothing reports nothing)."""

from __future__ import annotations

from typing import Any

from fsm_mcp.connectors.base import Billed, Booking, MergePlan
from fsm_mcp.events import outbox
from fsm_mcp.events.outbox import EventType
from fsm_mcp.models import Job, JobStatus
from fsm_mcp.store import Store

_STATUS_EVENT: dict[JobStatus, EventType] = {JobStatus.completed: "job.completed", JobStatus.canceled: "job.cancelled"}


def job_state(job: Job) -> dict[str, Any]:
    """A job as its events carry it: ids, status and window, nothing personal."""
    return {"job_id": job.job_id, "customer_id": job.customer_id, "location_id": job.location_id,
            "status": job.status.value, "technician_ids": sorted(job.technician_ids),
            "window_start": job.window_start.isoformat(), "window_end": job.window_end.isoformat()}


async def job_booked(db: Store, tenant: str, booking: Booking) -> None:
    if booking.already_booked:
        return
    job = booking.job
    if booking.customer_created:
        await outbox.record(db, tenant, "customer.created", "customer", job.customer_id,
                            {"customer_id": job.customer_id})
    await outbox.record(db, tenant, "job.created", "job", job.job_id, job_state(job))
    for technician_id in sorted(job.technician_ids):
        await outbox.record(db, tenant, "technician.assigned", "job", job.job_id,
                            {**job_state(job), "technician_id": technician_id})


async def job_changed(db: Store, tenant: str, job: Job, assigned: str | None = None) -> None:
    """After a status move, a cancellation or a dispatch (`assigned`: the technician it assigned): a
    `technician.assigned` if that technician is new to the job, then a status event if the status moved."""
    last = await outbox.last_of(db, tenant, "job", job.job_id)
    known = last.data if last is not None else {}
    state = job_state(job)
    if assigned is not None and assigned not in known.get("technician_ids", ()):
        await outbox.record(db, tenant, "technician.assigned", "job", job.job_id, {**state, "technician_id": assigned})
    if known.get("status") != job.status.value:
        type_ = _STATUS_EVENT.get(job.status, "job.status_changed")
        await outbox.record(db, tenant, type_, "job", job.job_id, {**state, "previous_status": known.get("status")})


async def invoice_created(db: Store, tenant: str, billed: Billed) -> None:
    if billed.already_invoiced:
        return
    invoice = billed.invoice
    await outbox.record(db, tenant, "invoice.created", "invoice", invoice.invoice_id, {
        "invoice_id": invoice.invoice_id, "job_id": invoice.job_id, "customer_id": invoice.customer_id,
        "status": invoice.status, "total": str(invoice.total), "balance": str(invoice.balance)})


async def customers_merged(db: Store, tenant: str, plan: MergePlan) -> None:
    if not plan.applied or not plan.merged:
        return
    await outbox.record(db, tenant, "customer.merged", "customer", plan.keep.customer_id, {
        "customer_id": plan.keep.customer_id, "merged_ids": [c.customer_id for c in plan.merged]})
