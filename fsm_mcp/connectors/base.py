"""The Backend Protocol: everything the tools may ask of a system of record.

A backend is bound to one business. It receives vendor-neutral requests, applies the
domain rules (identity, scheduling, billing) and answers with the project's models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from fsm_mcp.identity.contacts import CallerPerson
from fsm_mcp.identity.keys import Profile
from fsm_mcp.identity.scoring import Scored
from fsm_mcp.inputs import AddressIn, CustomerDetails, LineItemIn
from fsm_mcp.models import (
    Confidence,
    Customer,
    Invoice,
    Job,
    JobStatus,
    Priority,
    Technician,
    untrusted,
)
from fsm_mcp.scheduling import Slot
from fsm_mcp.settings import Business
from fsm_mcp.store.idempotency import NO_KEY, Attempt


class BookingRequest(BaseModel):
    """A booking, validated by its door: the request model of the booking service, and what its idempotency
    key is bound to (every field, see `request_hash`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    customer_id: str | None
    customer: CustomerDetails | None
    address: AddressIn | None
    job_type: str
    summary: str
    priority: Priority
    window: tuple[datetime, datetime]  # aware, in the business's zone
    technician_id: str | None
    allow_duplicate: bool
    new_customer: bool
    caller_phone: str | None = None  # E.164; learned onto an existing customer's record when it is not there


class Booking(BaseModel):
    job: Job
    customer_created: bool
    already_booked: bool
    contacts_added: list[str] = Field(default_factory=list)
    contact_added: str | None = None  # the caller, added as a new contact of the account (its contact id)


@dataclass(frozen=True, slots=True)
class JobFilter:
    date_from: datetime | None = None
    date_to: datetime | None = None
    statuses: tuple[JobStatus, ...] = ()
    technician_id: str | None = None
    customer_id: str | None = None
    limit: int = 50


class Billed(BaseModel):
    invoice: Invoice
    already_invoiced: bool


class RecentJob(BaseModel):
    """A past or upcoming job as an agent mentions it on a call; get_job has the rest."""

    job_id: str
    job_type: str = untrusted(...)
    summary: str = untrusted(...)
    status: JobStatus
    window_start: datetime
    address: str | None = untrusted(...)
    outcome: str | None = untrusted(about="The last note recorded on the job")

    @classmethod
    def of(cls, job: Job) -> RecentJob:
        notes = [h.note for h in job.history if h.note]
        return cls(job_id=job.job_id, job_type=job.job_type, summary=job.summary, status=job.status,
                   window_start=job.window_start, address=job.address, outcome=notes[-1] if notes else None)


class CustomerProfile(BaseModel):
    customer: Customer
    recent_jobs: list[RecentJob] = Field(description="Most recent first")
    open_balance: Decimal


class DuplicateMember(BaseModel):
    customer_id: str
    name: str
    external_id: str | None = Field(default=None, description="The id given at import, if any")
    person: int = Field(default=1, description="Which person of the account this record is: records with one "
                        "number are one person; another number is another member of the household (a contact to keep)")


class DuplicateGroup(BaseModel):
    members: list[DuplicateMember] = Field(description="Oldest record first: the usual one to keep")
    confidence: Confidence = Field(description="As sure as the weakest link between two members")
    score: int = Field(ge=0, le=100)
    reasons: list[str]


class DuplicateReport(BaseModel):
    groups: list[DuplicateGroup]
    more_groups: int = Field(description="Groups found beyond the limit; raise it or merge these first")
    customers: int = Field(description="Live customer records examined")
    pairs_compared: int


class MergePlan(BaseModel):
    """What merging moves onto the kept record; applied only when the caller confirms."""

    keep: Customer
    merged: list[Customer]
    locations_moved: int
    locations_combined: int = Field(description="Duplicate service addresses folded into the kept record's own")
    jobs_moved: int
    invoices_moved: int
    phones_added: list[str]
    emails_added: list[str]
    applied: bool


Progress = Callable[[int, int], None]


class Recognition(BaseModel):
    matches: list[Scored]
    profile: CustomerProfile | None = None  # of the top match, when it is safe to attach
    contact: CallerPerson | None = None  # who of the profile's account the caller is, when the query says


class Backend(Protocol):
    business: Business

    async def lookup_customers(self, query: Profile, limit: int) -> Recognition:
        """Matches best first, with the top one's profile when it is exact or likely."""
        ...

    async def customer_history(self, customer_id: str, jobs: int = 5) -> CustomerProfile: ...

    async def find_duplicates(self, min_confidence: Confidence, limit: int, progress: Progress | None = None) -> DuplicateReport:
        """Groups of records that are one customer, surest first."""
        ...

    async def merge_customers(self, keep_id: str, merge_ids: list[str], apply: bool) -> MergePlan:
        """The plan, carried out when `apply`: everything moves to keep_id, the rest point to it."""
        ...

    async def create_job(self, request: BookingRequest, attempt: Attempt = NO_KEY) -> Booking:
        """Book it once: `attempt` carries the idempotency key (a vendor keeps it on the job, to read it
        back) and says whether an earlier call with that key was cut off."""
        ...

    async def get_job(self, job_id: str) -> Job: ...

    async def list_jobs(self, query: JobFilter) -> list[Job]: ...

    async def dispatch(self, job_id: str, technician_id: str, window: tuple[datetime, datetime] | None) -> Job: ...

    async def update_job_status(self, job_id: str, status: JobStatus, note: str | None) -> Job: ...

    def cannot_set(self, status: JobStatus) -> str | None:
        """Why this system's API cannot move a job to `status` (its own apps do), or None; asked before a
        two-step action previews what it cannot then do."""
        ...

    async def create_invoice(
        self, job_id: str, lines: list[LineItemIn], tax_rate: Decimal, discount: Decimal, allow_additional: bool
    ) -> Billed: ...

    async def list_technicians(self, skill: str | None, include_inactive: bool) -> list[Technician]: ...

    async def find_slots(self, skill: str, date_from: date, date_to: date, duration: timedelta) -> list[Slot]: ...
