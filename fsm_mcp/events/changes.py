"""What each change reports: the events a service records after its write, decided from the write's result
and the subject's last event (so a retried write that changed nothing reports nothing). They go through
`outbox.report`: on the local store in the write's transaction, over a vendor in its idempotency record's."""

from __future__ import annotations

from typing import Any

from fsm_mcp.events import outbox
from fsm_mcp.events.outbox import EventType
from fsm_mcp.models import Job, JobStatus
from fsm_mcp.results import Billed, Booking, MergePlan
from fsm_mcp.store import Store

_STATUS_EVENT: dict[JobStatus, EventType] = {JobStatus.completed: "job.completed", JobStatus.canceled: "job.cancelled"}


def job_state(job: Job) -> dict[str, Any]:
    """A job as its events carry it: ids, type, status and window, nothing personal. The type lets the automation
    price a completion without reading the job back from the vendor."""
    return {"job_id": job.job_id, "customer_id": job.customer_id, "location_id": job.location_id,
            "job_type": job.job_type, "status": job.status.value, "technician_ids": sorted(job.technician_ids),
            "window_start": job.window_start.isoformat(), "window_end": job.window_end.isoformat()}


async def job_booked(db: Store, tenant: str, booking: Booking) -> None:
    if booking.already_booked:
        return
    job = booking.job
    if booking.customer_created:
        await outbox.report(db, tenant, "customer", job.customer_id,
                            [("customer.created", {"customer_id": job.customer_id})])
    state = job_state(job)
    await outbox.report(db, tenant, "job", job.job_id, [
        ("job.created", state),
        *(("technician.assigned", {**state, "technician_id": t}) for t in sorted(job.technician_ids))])


async def job_changed(db: Store, tenant: str, job: Job, assigned: str | None = None) -> None:
    """After a status move, a cancellation or a dispatch (`assigned`: the technician it assigned): a
    `technician.assigned` if that technician is new to the job, then a status event if the status moved."""
    last = await outbox.last_of(db, tenant, "job", job.job_id)
    known = last.data if last is not None else {}
    state = job_state(job)
    found: list[tuple[EventType, dict[str, Any]]] = []
    if assigned is not None and assigned not in known.get("technician_ids", ()):
        found.append(("technician.assigned", {**state, "technician_id": assigned}))
    if known.get("status") != job.status.value:
        found.append((_STATUS_EVENT.get(job.status, "job.status_changed"),
                      {**state, "previous_status": known.get("status")}))
    await outbox.report(db, tenant, "job", job.job_id, found)


async def invoice_created(db: Store, tenant: str, billed: Billed, resumed: bool = False) -> None:
    """`resumed`: the call takes over one cut off after the vendor made the invoice, which it now finds there
    (`already_invoiced`); its event was not kept with that call's record, so it is reported here, once."""
    if billed.already_invoiced and not resumed:
        return
    invoice = billed.invoice
    await outbox.report(db, tenant, "invoice", invoice.invoice_id, [("invoice.created", {
        "invoice_id": invoice.invoice_id, "job_id": invoice.job_id, "customer_id": invoice.customer_id,
        "status": invoice.status, "total": str(invoice.total), "balance": str(invoice.balance)})])


async def customers_merged(db: Store, tenant: str, plan: MergePlan) -> None:
    if not plan.applied or not plan.merged:
        return
    await outbox.report(db, tenant, "customer", plan.keep.customer_id, [("customer.merged", {
        "customer_id": plan.keep.customer_id, "merged_ids": [c.customer_id for c in plan.merged]})])
