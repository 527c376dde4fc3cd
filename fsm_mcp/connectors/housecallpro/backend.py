"""The Housecall Pro backend: the Backend Protocol over `api`, `jobs`, `booking`, `invoices`, `sync`."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx2 as httpx

from fsm_mcp.billing import cents
from fsm_mcp.connectors.housecallpro import invoices, mapping
from fsm_mcp.connectors.housecallpro.api import HousecallProApi
from fsm_mcp.connectors.housecallpro.booking import HousecallProSteps
from fsm_mcp.connectors.housecallpro.catalog import JobTypes, Technicians
from fsm_mcp.connectors.housecallpro.changes import HousecallProChanges
from fsm_mcp.connectors.housecallpro.config import HousecallProSettings
from fsm_mcp.connectors.housecallpro.jobs import Jobs, cannot_set
from fsm_mcp.connectors.housecallpro.sync import directory_sync
from fsm_mcp.connectors.http.client import Policy, http_client
from fsm_mcp.connectors.http.concurrently import concurrently
from fsm_mcp.connectors.http.lanes import Lanes
from fsm_mcp.connectors.vendor import VendorBackend
from fsm_mcp.events.vendor_poll import JobChangePoll
from fsm_mcp.identity.text import fold
from fsm_mcp.inputs import LineItemIn
from fsm_mcp.models import Job, JobStatus, Technician
from fsm_mcp.results import Billed
from fsm_mcp.settings import Business
from fsm_mcp.store import Store

UNPAID = ("open", "pending_payment")  # the invoice statuses that still owe money


class HousecallProBackend(VendorBackend):
    vendor = "Housecall Pro"
    jobs: Jobs  # its own, with more than every vendor\'s jobs share

    def __init__(self, db: Store, business: Business, config: HousecallProSettings, http: httpx.AsyncClient,
                 policy: Policy | None = None, lanes: Lanes | None = None) -> None:
        super().__init__(db, business, http)
        self.api = HousecallProApi(config, http, policy, lanes)
        self.technicians = Technicians(self.api)
        self.job_types = JobTypes(self.api)
        self.jobs = Jobs(self.api, self.technicians, business)
        self.steps = HousecallProSteps(self.api, self.jobs, self.job_types, db, business)
        self.sync = directory_sync(self.api, db, business, config.sync_page_size)
        self.changes = JobChangePoll(db, self.tenant, HousecallProChanges(self.api, self.jobs, db))

    @classmethod
    def open(cls, db: Store, business: Business, config: HousecallProSettings,
             transport: httpx.AsyncBaseTransport | None = None, lanes: Lanes | None = None) -> HousecallProBackend:
        """`lanes`: the process's (or, over Redis, every replica's) lanes; without, this backend keeps its own."""
        return cls(db, business, config, http_client(config.api_url, transport), lanes=lanes)

    # ----- customers: the directory, plus Housecall Pro for what changes by the hour -----
    async def recent_jobs(self, customer_id: str, n: int) -> list[Job]:
        body = await self.api.get("/jobs", {"customer_id": customer_id, "sort_by": "created_at", "sort_direction": "desc",
                                            "page": 1, "page_size": n})
        return [self.jobs.view(j) for j in body["jobs"][:n]]

    async def balance(self, customer_id: str) -> Decimal:
        owed = await self.api.all("/invoices", "invoices", {"customer_uuid": [customer_id], "status": list(UNPAID)})
        return cents(sum((mapping.money(i.get("due_amount")) for i in owed), Decimal("0")))

    # ----- jobs -----
    def cannot_set(self, status: JobStatus) -> str | None:
        return cannot_set(status)

    async def update_job_status(self, job_id: str, status: JobStatus, note: str | None) -> Job:
        return await self.jobs.set_status(job_id, status, note, self.clock.now())

    async def create_invoice(
        self, job_id: str, lines: list[LineItemIn], tax_rate: Decimal, discount: Decimal, allow_additional: bool
    ) -> Billed:
        return await invoices.bill(self.api, self.jobs, job_id, lines, tax_rate, discount, allow_additional,
                                   self.clock.now().astimezone(self.business.zone))

    # ----- technicians and slots -----
    async def roster(self) -> list[Technician]:
        return list((await self.technicians.all()).values())

    async def busy(self, technicians: list[str], start: datetime, end: datetime) -> dict[str, list[tuple[datetime, datetime]]]:
        spans: dict[str, list[tuple[datetime, datetime]]] = {t: [] for t in technicians}
        for job in await self.jobs.between(start, end, work_status=list(mapping.BUSY_FILTER)):
            if mapping.is_open(job) and (span := mapping.window(job, self.business.zone)):
                for tech in mapping.assigned(job):
                    if tech in spans:
                        spans[tech].append(span)
        return spans

    async def check(self) -> dict[str, Any]:
        """What the connector resolved from Housecall Pro, for `fsm-mcp check`; writes nothing."""
        company, techs, types = await concurrently(lambda: self.api.get("/company"), self.technicians.all, self.job_types.all)
        zone = str(company.get("time_zone") or "")
        return {
            "api_url": self.api.settings.api_url,
            "company": company.get("name"),
            "time_zone": zone + ("" if not zone or zone == self.business.timezone else
                                 f" (the business is set to {self.business.timezone}: times without an offset are read "
                                 "in the business's zone, so set them alike)"),
            "technicians": {t.name: t.skills for t in techs.values()},
            "technicians_without_skills": sorted(t.name for t in techs.values() if not t.skills),
            "job_types": sorted(str(t["name"]) for t in types.values()),
            "job_types_missing": sorted(n for n in self.business.job_types if fold(n) not in types),
        }
