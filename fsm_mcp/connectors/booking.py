"""The one booking path, the same for the local store and every vendor: which customer (the
directory decides), which of their places, the caller's contacts the record lacks, a cut-off
call's job read back by its key, the duplicate-job rule, then the job and its dispatch.

What differs by system of record is a handful of steps (`BookingSteps`): how a customer, a
place, a contact and a job are written there, how a job is found again by the key it carries,
and which open jobs the duplicate rule looks at. The local store runs them all in the caller's
transaction; a vendor's steps each write to the vendor, then the same to the directory.

Over a vendor each step is followed by a recovery point on the key's row (`Attempt.record`:
the customer and place made, the job made). A call that resumes a cut-off one continues from
the recorded steps with their ids, and looks at the vendor only for the step that was in
flight, among records created since the last recovery point (`look_back`).

A new customer is also begun on the row before its vendor write (`Attempt.begin`), since the
choice to create one is not made again the same way: by the time a cut-off call is resumed the
directory may hold another caller of the same name at the same house, or the customer that call
made (the sync mirrored it). A call that resumes one cut off while creating the customer asks the
directory nothing: it takes up the vendor step, which finds what the cut-off call made, or makes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Protocol

from fsm_mcp.directory import booking as directory
from fsm_mcp.directory import customers
from fsm_mcp.errors import FsmError, InvalidInput, WriteUncertain
from fsm_mcp.identity.contacts import CallerPerson
from fsm_mcp.inputs import AddressIn, BookingRequest
from fsm_mcp.models import Customer, Job, JobStatus
from fsm_mcp.results import Booking
from fsm_mcp.scheduling import BOOKED, overlaps
from fsm_mcp.settings import Business
from fsm_mcp.store import Store
from fsm_mcp.store.idempotency import Attempt


class BookingSteps(Protocol):
    async def before(self, request: BookingRequest) -> None:
        """Refuse what the system would refuse, before anything is written."""
        ...

    async def new_customer(self, request: BookingRequest, attempt: Attempt, now: datetime) -> tuple[str, str]:
        """Create the caller as a customer with the request's address as its place: (customer id, place id).
        When the call this one resumes was cut off creating it (`attempt.in_flight(CUSTOMER)`), first the one
        that call made, if it was made."""
        ...

    async def new_place(self, customer: Customer, address: AddressIn, now: datetime) -> str:
        ...

    async def add_contacts(self, customer: Customer, phones: list[str], emails: list[str], now: datetime,
                           person: CallerPerson | None = None) -> Added:
        """Add these numbers and e-mails to the customer's record, as the caller's (`person`: a known contact of
        the account, or a new one to add); the ones added, and the contact added if any."""
        ...

    async def open_jobs(self, customer_id: str, place_id: str, request: BookingRequest) -> list[Job]:
        """The customer's jobs at this place around the request's window, oldest first (the duplicate rule
        picks among them)."""
        ...

    async def job_by_key(self, customer_id: str, place_id: str, request: BookingRequest, key: str,
                         since: datetime) -> Job | None:
        """The job an earlier, cut-off call with this key booked since `since`, if any."""
        ...

    async def create_job(self, customer_id: str, place_id: str, request: BookingRequest, key: str | None,
                         now: datetime) -> Job:
        """The job, carrying the key where the system can keep one."""
        ...

    async def dispatch(self, job_id: str, technician_id: str, now: datetime) -> Job:
        ...


Added = tuple[list[str], str | None]  # the numbers and e-mails added, and the id of the contact added if any

CUSTOMER, PLACE, JOB = "customer", "place", "job"  # the recovery points of a booking, in order
SKEW = timedelta(minutes=1)  # how far a vendor's clock may be behind ours when it stamps what it created


def look_back(attempt: Attempt, now: datetime) -> datetime:
    """Since when what this call's step in flight may have made at the vendor can date: the key's last
    recovery point (or its claim), less the clocks' skew. Decided from the key's row, not guessed."""
    return (attempt.since or now) - SKEW


class MadeNotRecorded(WriteUncertain):
    """The vendor made the record (its answer came, or was read back), then the call failed before the key's
    recovery point recorded it. Like an uncertain write it keeps the key, so the retry resumes and reads the
    record back instead of making a second one."""

    def __init__(self, vendor: str, what: str, cause: FsmError) -> None:
        super().__init__(f"{vendor} made {what}, then reading it back failed ({cause}) Retry with the same "
                         "idempotency_key and arguments: the retry books this caller onto it, not onto a second one.")


@asynccontextmanager
async def kept_key(vendor: str, what: str) -> AsyncIterator[None]:
    """Around the reads between a vendor's write and its recovery point: a failure there must not give the key
    back, since the record exists at the vendor."""
    try:
        yield
    except WriteUncertain:
        raise
    except FsmError as exc:
        raise MadeNotRecorded(vendor, what, exc) from None


@asynccontextmanager
async def resumed_by_retry(attempt: Attempt) -> AsyncIterator[None]:
    """Around a booking's vendor write of the new customer or of the job: a retry with the key resumes the
    step and reads back what this call may have made before making anything (the customer by what the call
    gave, the job by the key it carries), so the agent is told to retry, not to check by hand. Without a
    key nothing resumes, and the vendor client's advice stands."""
    try:
        yield
    except MadeNotRecorded:
        raise
    except WriteUncertain as exc:
        if not attempt.key:
            raise
        raise WriteUncertain(f"{exc.happened} Retry with the same idempotency_key and arguments: the retry looks "
                             "for it first and makes it only if it is not there.", happened=exc.happened) from None


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


async def book(steps: BookingSteps, db: Store, business: Business, request: BookingRequest, attempt: Attempt,
               now: datetime) -> Booking:
    await steps.before(request)
    made = attempt.recorded(CUSTOMER)  # an earlier holder of the key created the caller as a customer
    creating = attempt.in_flight(CUSTOMER)  # or was cut off creating it: the directory chose a new one then
    found = None if made or creating else (await db.aread(directory.attach, business, request))[0]
    if found is None:
        if made:
            customer_id, place_id = made.split(" ")
        else:
            if request.address is None:
                raise InvalidInput("address", "a new customer needs the service address; ask the caller for it")
            await attempt.begin(db, CUSTOMER)
            async with resumed_by_retry(attempt):
                customer_id, place_id = await steps.new_customer(request, attempt, now)
            await attempt.record(db, CUSTOMER, f"{customer_id} {place_id}")
        earlier = await _earlier_job(steps, request, attempt, customer_id, place_id, now)
        job = await _job(steps, db, request, attempt, customer_id, place_id, now, earlier)
        return Booking(job=job, customer_created=True, already_booked=False)
    customer = await db.aread(customers.load_customer, business.tenant_id, found)
    customer_id = customer.customer_id
    place_id = attempt.recorded(PLACE) or directory.pick_location(customer.locations, request.address) or ""
    if not place_id:
        place_id = await steps.new_place(customer, _given(request.address), now)
        await attempt.record(db, PLACE, place_id)
    phones, emails = directory.missing_contacts(business, request, customer)
    person = directory.caller_person(business, request, customer)
    learned, added = await steps.add_contacts(customer, phones, emails, now, person) \
        if phones or emails or (person and person.status == "new") else ([], None)
    earlier = await _earlier_job(steps, request, attempt, customer_id, place_id, now)
    if earlier is None and not request.allow_duplicate:
        candidates = await steps.open_jobs(customer_id, place_id, request)
        if same := duplicate_of(candidates, request, business.skill_for(request.job_type)):
            return Booking(job=same, customer_created=False, already_booked=True, contacts_added=learned,
                           contact_added=added)
    job = await _job(steps, db, request, attempt, customer_id, place_id, now, earlier)
    return Booking(job=job, customer_created=False, already_booked=False, contacts_added=learned, contact_added=added)


async def _earlier_job(steps: BookingSteps, request: BookingRequest, attempt: Attempt, customer_id: str,
                       place_id: str, now: datetime) -> Job | None:
    """The job an earlier holder of the key made: recorded on the key's row, or, if it was cut off before
    recording it, read back from the vendor by the key the job carries."""
    if recorded := attempt.recorded(JOB):
        return Job.model_validate_json(recorded)
    if attempt.key and attempt.resumed:
        return await steps.job_by_key(customer_id, place_id, request, attempt.key, look_back(attempt, now))
    return None


async def _job(steps: BookingSteps, db: Store, request: BookingRequest, attempt: Attempt, customer_id: str,
               place_id: str, now: datetime, earlier: Job | None) -> Job:
    """The booking's job (the earlier one, or a new one, recorded on the key's row), then its dispatch, which
    leaves a technician already assigned as it is."""
    job = earlier
    if job is None:
        async with resumed_by_retry(attempt):
            job = await steps.create_job(customer_id, place_id, request, attempt.key, now)
    await attempt.record(db, JOB, job.model_dump_json())
    if request.technician_id:
        job = await steps.dispatch(job.job_id, request.technician_id, now)
    return job
