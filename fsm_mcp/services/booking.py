"""Booking a job: the one booking path (`connectors.booking`) run once per idempotency key.

Every write service records its events (`events.changes`) inside `write`: on the local store that runs in the
transaction of the change and of its idempotency record, so all three commit together; over a vendor, once the
vendor has answered."""

from __future__ import annotations

from fsm_mcp.businesses import ServedBusiness
from fsm_mcp.events import changes
from fsm_mcp.inputs import BookingRequest
from fsm_mcp.results import Booking
from fsm_mcp.store import audit
from fsm_mcp.store.idempotency import Attempt

OPERATION = "create_job"
CONTACT_ADDED = "create_job:contact_added"  # the audit entry of a caller added as a contact by a booking


async def book(business: ServedBusiness, actor: str, key: str | None, request: BookingRequest) -> Booking:
    """Book `request` for the business. A retry with the same key and request returns the first booking; with
    another request it is refused (IdempotencyMismatch)."""

    async def write(attempt: Attempt) -> Booking:
        booking = await business.backend.create_job(request, attempt)
        await changes.job_booked(business.db, business.tenant, booking)  # in the booking's transaction, if local
        if booking.contact_added:  # the caller became a contact of the account: an entry of its own says who did it
            await business.db.awrite(audit.record, business.db.clock.now(), business.tenant, CONTACT_ADDED, actor,
                                     {"customer_id": booking.job.customer_id, "contact_id": booking.contact_added,
                                      "contacts_added": booking.contacts_added}, booking.contact_added)
        return booking

    return await business.writer.run(
        tenant=business.tenant, actor=actor, tool=OPERATION, key=key, request=request, result_type=Booking,
        result_id=lambda b: b.job.job_id, write=write,
    )
