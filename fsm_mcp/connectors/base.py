"""The Backend Protocol: everything the services may ask of a system of record.

A backend is bound to one business. It receives vendor-neutral requests (`fsm_mcp.inputs`), applies the
domain rules (identity, scheduling, billing) and answers with the project's models (`fsm_mcp.models`,
`fsm_mcp.results`).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from fsm_mcp.identity.keys import Profile
from fsm_mcp.inputs import BookingRequest, JobFilter, LineItemIn
from fsm_mcp.models import Confidence, Job, JobStatus, Technician
from fsm_mcp.results import (
    Billed,
    Booking,
    CustomerProfile,
    DuplicateReport,
    MergePlan,
    Progress,
    Recognition,
)
from fsm_mcp.scheduling import Slot
from fsm_mcp.settings import Business
from fsm_mcp.store.idempotency import NO_KEY, Attempt


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
