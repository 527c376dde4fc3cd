"""What every vendor backend does the same way. Customers are recognised, and duplicates
found, in the directory the connector keeps synced; a booking follows the one booking path
with the vendor's steps, and a job is read, listed and dispatched by the vendor's `jobs`; a
customer's recent jobs and balance (`recent_jobs`, `balance`), the technicians (`roster`) and
when they are busy (`busy`) come from the vendor, each its own way."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import httpx2 as httpx

from fsm_mcp.connectors.booking import BookingSteps, book
from fsm_mcp.connectors.http.concurrently import concurrently
from fsm_mcp.connectors.sync import DirectorySync
from fsm_mcp.directory import customers, duplicates
from fsm_mcp.errors import InvalidInput
from fsm_mcp.events.vendor_hooks import Inbound
from fsm_mcp.events.vendor_poll import JobChangePoll
from fsm_mcp.identity.contacts import which_contact
from fsm_mcp.identity.keys import Profile
from fsm_mcp.inputs import BookingRequest, JobFilter
from fsm_mcp.models import Customer, Job, JobStatus, Technician
from fsm_mcp.results import (
    Booking,
    CustomerProfile,
    DuplicateReport,
    MergePlan,
    Progress,
    RecentJob,
    Recognition,
)
from fsm_mcp.scheduling import Slot, free_slots
from fsm_mcp.settings import Business
from fsm_mcp.store import Store
from fsm_mcp.store.idempotency import NO_KEY, Attempt


class VendorJobs(Protocol):
    """A vendor's jobs, read and dispatched its own way."""

    async def get(self, job_id: str) -> Job: ...

    async def listing(self, query: JobFilter) -> list[Job]: ...

    async def dispatch(self, job_id: str, technician_id: str, window: tuple[datetime, datetime] | None) -> Job: ...


class VendorBackend:
    vendor: str
    sync: DirectorySync
    steps: BookingSteps
    jobs: VendorJobs
    changes: JobChangePoll | None = None  # the vendor's job changes, polled with the directory sync
    inbound: Inbound | None = None  # its webhooks, when the business takes them

    def __init__(self, db: Store, business: Business, http: httpx.AsyncClient) -> None:
        self.db, self.business, self.http, self.clock = db, business, http, db.clock
        self.tenant = business.tenant_id

    async def aclose(self) -> None:
        await self.http.aclose()

    def cannot_set(self, status: JobStatus) -> str | None:
        return None

    async def create_job(self, request: BookingRequest, attempt: Attempt = NO_KEY) -> Booking:
        return await book(self.steps, self.db, self.business, request, attempt, self.clock.now())

    async def get_job(self, job_id: str) -> Job:
        return await self.jobs.get(job_id)

    async def list_jobs(self, query: JobFilter) -> list[Job]:
        return await self.jobs.listing(query)

    async def dispatch(self, job_id: str, technician_id: str, window: tuple[datetime, datetime] | None) -> Job:
        return await self.jobs.dispatch(job_id, technician_id, window)

    async def lookup_customers(self, query: Profile, limit: int) -> Recognition:
        matches = await self.db.asnapshot(customers.lookup, self.tenant, query, limit)
        top = matches[0] if matches and matches[0].confidence in ("exact", "likely") else None
        if top is None:
            return Recognition(matches=matches)
        profile = await self.customer_history(top.customer_id)
        return Recognition(matches=matches, profile=profile, contact=which_contact(query, profile.customer.contacts))

    async def customer_history(self, customer_id: str, jobs: int = 5) -> CustomerProfile:
        customer: Customer = await self.db.asnapshot(customers.load_customer, self.tenant, customer_id)
        if customer.merged_into:
            customer = await self.db.asnapshot(customers.load_customer, self.tenant, customer.merged_into)
        cid = customer.customer_id
        recent, owed = await concurrently(lambda: self.recent_jobs(cid, jobs), lambda: self.balance(cid))  # one round trip
        recent = sorted(recent, key=lambda j: j.window_start, reverse=True)
        return CustomerProfile(customer=customer, recent_jobs=[RecentJob.of(j) for j in recent], open_balance=owed)

    async def recent_jobs(self, customer_id: str, n: int) -> list[Job]:
        """The customer's newest `n` jobs: one page, however many they have."""
        raise NotImplementedError

    async def balance(self, customer_id: str) -> Decimal:
        raise NotImplementedError

    async def find_duplicates(self, min_confidence: str, limit: int, progress: Progress | None = None) -> DuplicateReport:
        return await self.db.ascan(duplicates.find, self.tenant, min_confidence, limit, progress)

    async def merge_customers(self, keep_id: str, merge_ids: list[str], apply: bool) -> MergePlan:
        raise InvalidInput("keep_id", f"{self.vendor}'s API cannot merge customers; merge them in {self.vendor}, and "
                                      "fsm-mcp picks it up at its next sync")

    async def check(self) -> dict[str, Any]:
        """What the connector resolved from the vendor, for `fsm-mcp check`; writes nothing."""
        raise NotImplementedError

    async def roster(self) -> list[Technician]:
        """Every technician the vendor lists, active or not."""
        raise NotImplementedError

    async def list_technicians(self, skill: str | None, include_inactive: bool) -> list[Technician]:
        techs = [t for t in await self.roster() if include_inactive or t.active]
        if skill:
            wanted = self.business.skill_for(skill)
            techs = [t for t in techs if wanted in t.skills]
        return sorted(techs, key=lambda t: t.name)

    async def busy(self, technicians: list[str], start: datetime, end: datetime) -> dict[str, list[tuple[datetime, datetime]]]:
        """When each of these technicians is taken by open work starting in [start, end)."""
        raise NotImplementedError

    async def find_slots(self, skill: str, date_from: date, date_to: date, duration: timedelta) -> list[Slot]:
        techs = [t.technician_id for t in await self.list_technicians(skill, False)]
        zone = self.business.zone
        start = datetime.combine(date_from, datetime.min.time(), zone)
        end = datetime.combine(date_to + timedelta(days=1), datetime.min.time(), zone)
        spans = await self.busy(techs, start - timedelta(days=1), end)  # a visit from the day before may run over
        return free_slots(self.business, date_from, date_to, duration, techs, spans, self.clock.now())
