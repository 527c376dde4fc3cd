"""Booking a job: the one booking path (`connectors.booking`) run once per idempotency key.

Every write service records its events (`events.changes`) inside `write`: on the local store that runs in the
transaction of the change and of its idempotency record, so all three commit together; over a vendor, once the
vendor has answered."""

from __future__ import annotations

from fsm_mcp.app import ServedBusiness
from fsm_mcp.connectors.base import Booking, BookingRequest
from fsm_mcp.events import changes
from fsm_mcp.store.idempotency import Attempt

OPERATION = "create_job"


async def book(business: ServedBusiness, actor: str, key: str | None, request: BookingRequest) -> Booking:
    """Book `request` for the business. A retry with the same key and request returns the first booking; with
    another request it is refused (IdempotencyMismatch)."""

    async def write(attempt: Attempt) -> Booking:
        booking = await business.backend.create_job(request, attempt)
        await changes.job_booked(business.db, business.tenant, booking)  # in the booking's transaction, if local
        return booking

    return await business.writer.run(
        tenant=business.tenant, actor=actor, tool=OPERATION, key=key, request=request, result_type=Booking,
        result_id=lambda b: b.job.job_id, write=write,
    )
