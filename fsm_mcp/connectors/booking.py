"""The one booking path, the same for the local store and every vendor: which customer (the
directory decides), which of their places, the caller's contacts the record lacks, a cut-off
call's job read back by its key, the duplicate-job rule, then the job and its dispatch.

What differs by system of record is a handful of steps (`BookingSteps`): how a customer, a
place, a contact and a job are written there, how a job is found again by the key it carries,
and which open jobs the duplicate rule looks at. The local store runs them all in the caller's
transaction; a vendor's steps each write to the vendor, then the same to the directory.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from fsm_mcp.connectors.base import Booking, BookingRequest
from fsm_mcp.directory import booking as directory
from fsm_mcp.directory import customers
from fsm_mcp.errors import InvalidInput
from fsm_mcp.inputs import AddressIn
from fsm_mcp.models import Customer, Job, JobStatus
from fsm_mcp.scheduling import BOOKED, overlaps
from fsm_mcp.settings import Business
from fsm_mcp.store.db import Database
from fsm_mcp.store.idempotency import Attempt


class BookingSteps(Protocol):
    async def before(self, request: BookingRequest) -> None:
        """Refuse what the system would refuse, before anything is written."""
        ...

    async def new_customer(self, request: BookingRequest, attempt: Attempt, now: datetime) -> tuple[str, str]:
        """Create the caller as a customer with the request's address as its place: (customer id, place id)."""
        ...

    async def new_place(self, customer: Customer, address: AddressIn, now: datetime) -> str:
        ...

    async def add_contacts(self, customer: Customer, phones: list[str], emails: list[str], now: datetime) -> list[str]:
        """Add these numbers and e-mails to the customer's record; the ones added."""
        ...

    async def open_jobs(self, customer_id: str, place_id: str, request: BookingRequest) -> list[Job]:
        """The customer's jobs at this place around the request's window, oldest first (the duplicate rule
        picks among them)."""
        ...

    async def job_by_key(self, customer_id: str, place_id: str, request: BookingRequest, key: str,
                         now: datetime) -> Job | None:
        """The job an earlier, cut-off call with this key booked, if any."""
        ...

    async def create_job(self, customer_id: str, place_id: str, request: BookingRequest, key: str | None,
                         now: datetime) -> Job:
        """The job, carrying the key where the system can keep one."""
        ...

    async def dispatch(self, job_id: str, technician_id: str, now: datetime) -> Job:
        ...


def duplicate_of(jobs: Iterable[Job], request: BookingRequest, skill: str) -> Job | None:
    """The duplicate-job rule: an open job (booked or on hold) of the same skill whose window overlaps
    the request's is the same booking; the first such job is returned instead of a second one."""
    for job in jobs:
        if job.skill == skill and (job.status in BOOKED or job.status == JobStatus.on_hold) and \
                overlaps(request.window, (job.window_start, job.window_end)):
            return job
    return None


def _given(address: AddressIn | None) -> AddressIn:
    assert address is not None  # pick_location asks for the address when the customer's place is unclear
    return address


async def book(steps: BookingSteps, db: Database, business: Business, request: BookingRequest, attempt: Attempt,
               now: datetime) -> Booking:
    await steps.before(request)
    found, _ = await db.aread(directory.attach, business, request)
    if found is None:
        if request.address is None:
            raise InvalidInput("address", "a new customer needs the service address; ask the caller for it")
        customer_id, place_id = await steps.new_customer(request, attempt, now)
        job = await steps.create_job(customer_id, place_id, request, attempt.key, now)
        if request.technician_id:
            job = await steps.dispatch(job.job_id, request.technician_id, now)
        return Booking(job=job, customer_created=True, already_booked=False)
    customer = await db.aread(customers.load_customer, business.tenant_id, found)
    customer_id = customer.customer_id
    place_id = directory.pick_location(customer.locations, request.address) or \
        await steps.new_place(customer, _given(request.address), now)
    phones, emails = directory.missing_contacts(business, request, customer)
    learned = await steps.add_contacts(customer, phones, emails, now) if phones or emails else []
    if attempt.key and attempt.resumed and \
            (done := await steps.job_by_key(customer_id, place_id, request, attempt.key, now)):
        return Booking(job=done, customer_created=False, already_booked=False, contacts_added=learned)
    if not request.allow_duplicate:
        candidates = await steps.open_jobs(customer_id, place_id, request)
        if same := duplicate_of(candidates, request, business.skill_for(request.job_type)):
            return Booking(job=same, customer_created=False, already_booked=True, contacts_added=learned)
    job = await steps.create_job(customer_id, place_id, request, attempt.key, now)
    if request.technician_id:
        job = await steps.dispatch(job.job_id, request.technician_id, now)
    return Booking(job=job, customer_created=False, already_booked=False, contacts_added=learned)
