"""The embedded backend: a full system of record in one SQLite file.

Each operation is one transaction, so the checks it makes (duplicate booking, a
technician's other jobs, an existing customer) hold when it writes.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from fsm_mcp.connectors.booking import book
from fsm_mcp.connectors.local import invoices, jobs, merge, technicians
from fsm_mcp.connectors.local.booking import LocalSteps
from fsm_mcp.directory import customers, duplicates
from fsm_mcp.identity.contacts import which_contact
from fsm_mcp.identity.keys import Profile
from fsm_mcp.inputs import BookingRequest, JobFilter, LineItemIn
from fsm_mcp.models import Job, JobStatus, Technician
from fsm_mcp.results import (
    Billed,
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
from fsm_mcp.store import invoices as invoice_rows
from fsm_mcp.store import jobs as job_rows
from fsm_mcp.store.idempotency import NO_KEY, Attempt

T = TypeVar("T")


class LocalBackend:
    """Answers with times in the business's own zone, the way a caller speaks them."""

    def __init__(self, db: Store, business: Business) -> None:
        self.db = db
        self.business = business
        self.tenant = business.tenant_id
        self.clock = db.clock
        self.steps = LocalSteps(db, business)

    def cannot_set(self, status: JobStatus) -> str | None:
        return None

    def _local(self, job: Job) -> Job:
        zone = self.business.zone
        return job.model_copy(update={
            "window_start": job.window_start.astimezone(zone), "window_end": job.window_end.astimezone(zone),
            "created_at": job.created_at.astimezone(zone),
            "history": [h.model_copy(update={"at": h.at.astimezone(zone)}) for h in job.history],
        })

    def _profile(self, conn: Any, customer_id: str, jobs_limit: int = 5) -> CustomerProfile:
        customer = customers.load_customer(conn, self.tenant, customer_id)
        if customer.merged_into:  # an id from before a merge answers with the record it became
            customer = customers.load_customer(conn, self.tenant, customer.merged_into)
        recent = job_rows.recent_for_customer(conn, self.tenant, customer.customer_id, jobs_limit)
        return CustomerProfile(customer=customer, recent_jobs=[RecentJob.of(self._local(j)) for j in recent],
                               open_balance=invoice_rows.open_balance(conn, self.tenant, customer.customer_id))

    async def lookup_customers(self, query: Profile, limit: int) -> Recognition:
        def read(conn: Any) -> Recognition:  # indexed point reads: a phone call is waiting
            matches = customers.lookup(conn, self.tenant, query, limit)
            top = matches[0] if matches and matches[0].confidence in ("exact", "likely") else None
            if top is None:
                return Recognition(matches=matches)
            profile = self._profile(conn, top.customer_id)
            return Recognition(matches=matches, profile=profile, contact=which_contact(query, profile.customer.contacts))
        return await self.db.asnapshot(read)

    async def customer_history(self, customer_id: str, jobs_limit: int = 5) -> CustomerProfile:
        return await self.db.asnapshot(self._profile, customer_id, jobs_limit)

    async def find_duplicates(self, min_confidence: str, limit: int, progress: Progress | None = None) -> DuplicateReport:
        return await self.db.ascan(duplicates.find, self.tenant, min_confidence, limit, progress)

    async def merge_customers(self, keep_id: str, merge_ids: list[str], apply: bool) -> MergePlan:
        run = self.db.awrite if apply else self.db.aread
        return await run(merge.merge, self.tenant, keep_id, merge_ids, self.clock.now(), apply)

    async def create_job(self, request: BookingRequest, attempt: Attempt = NO_KEY) -> Booking:
        async with self.db.atomic():  # every step in one transaction (joins the idempotency record's, if open)
            booking = await book(self.steps, self.db, self.business, request, attempt, self.clock.now())
        return booking.model_copy(update={"job": self._local(booking.job)})

    async def get_job(self, job_id: str) -> Job:
        return self._local(await self.db.asnapshot(job_rows.load_job, self.tenant, job_id))

    async def list_jobs(self, query: JobFilter) -> list[Job]:
        return [self._local(j) for j in await self.db.aread(job_rows.list_jobs, self.tenant, query)]

    async def dispatch(self, job_id: str, technician_id: str, window: tuple[datetime, datetime] | None) -> Job:
        return self._local(await self.db.awrite(jobs.dispatch, self.business, job_id, technician_id, window, self.clock.now()))

    async def update_job_status(self, job_id: str, status: JobStatus, note: str | None) -> Job:
        return self._local(await self.db.awrite(jobs.set_status, self.tenant, job_id, status, note, self.clock.now()))

    async def create_invoice(
        self, job_id: str, lines: list[LineItemIn], tax_rate: Decimal, discount: Decimal, allow_additional: bool
    ) -> Billed:
        return await self.db.awrite(
            invoices.create, self.tenant, job_id, lines, tax_rate, discount, self.clock.now(), allow_additional
        )

    async def list_technicians(self, skill: str | None, include_inactive: bool) -> list[Technician]:
        return await self.db.aread(technicians.list_all, self.tenant, skill, include_inactive)

    async def find_slots(self, skill: str, date_from: date, date_to: date, duration: timedelta) -> list[Slot]:
        def read(conn: Any, tenant: str) -> list[Slot]:
            techs = [t.technician_id for t in technicians.list_all(conn, tenant, skill, False)]
            zone = self.business.zone
            start = datetime.combine(date_from, datetime.min.time(), zone)
            end = datetime.combine(date_to + timedelta(days=1), datetime.min.time(), zone)
            busy = job_rows.busy_windows(conn, tenant, techs, start, end)
            spans = {t: [(s, e) for s, e, _ in windows] for t, windows in busy.items()}
            return free_slots(self.business, date_from, date_to, duration, techs, spans, self.clock.now())
        return await self.db.aread(read, self.tenant)
