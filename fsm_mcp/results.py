"""What a backend answers, whichever system of record it is: a booking, an invoice, a customer's profile and
a caller's recognition, duplicate groups, a merge plan. The services pass them on and the tools shape them for
the model; they sit below all three, beside `models` (the records) and `inputs` (what is asked).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from fsm_mcp.identity.contacts import CallerPerson
from fsm_mcp.identity.scoring import Scored
from fsm_mcp.models import Confidence, Customer, Invoice, Job, JobStatus, untrusted


class Booking(BaseModel):
    job: Job
    customer_created: bool
    already_booked: bool
    contacts_added: list[str] = Field(default_factory=list)
    contact_added: str | None = None  # the caller, added as a new contact of the account (its contact id)


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
