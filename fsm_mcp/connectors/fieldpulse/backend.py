"""The FieldPulse backend: the Backend Protocol over `api`, `jobs`, `booking`, `invoices`, `sync`."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx2 as httpx

from fsm_mcp.billing import cents
from fsm_mcp.connectors.fieldpulse import invoices, mapping
from fsm_mcp.connectors.fieldpulse.api import FieldPulseApi, where
from fsm_mcp.connectors.fieldpulse.booking import FieldPulseSteps
from fsm_mcp.connectors.fieldpulse.catalog import Technicians
from fsm_mcp.connectors.fieldpulse.changes import FieldPulseChanges, hinted
from fsm_mcp.connectors.fieldpulse.config import FieldPulseSettings
from fsm_mcp.connectors.fieldpulse.jobs import Jobs
from fsm_mcp.connectors.fieldpulse.sync import directory_sync
from fsm_mcp.connectors.http.client import Policy, http_client
from fsm_mcp.connectors.http.concurrently import concurrently
from fsm_mcp.connectors.http.lanes import Lanes
from fsm_mcp.connectors.vendor import VendorBackend
from fsm_mcp.events.vendor_hooks import Inbound
from fsm_mcp.events.vendor_poll import JobChangePoll
from fsm_mcp.inputs import LineItemIn
from fsm_mcp.models import Job, JobStatus, Technician
from fsm_mcp.results import Billed
from fsm_mcp.settings import Business
from fsm_mcp.store import Store


class FieldPulseBackend(VendorBackend):
    vendor = "FieldPulse"
    jobs: Jobs  # its own, with more than every vendor\'s jobs share

    def __init__(self, db: Store, business: Business, config: FieldPulseSettings, http: httpx.AsyncClient,
                 policy: Policy | None = None, lanes: Lanes | None = None) -> None:
        super().__init__(db, business, http)
        self.api = FieldPulseApi(config, http, policy, lanes)
        self.technicians = Technicians(self.api)
        self.jobs = Jobs(self.api, self.technicians, db, business)
        self.steps = FieldPulseSteps(self.api, self.jobs, db, business)
        self.sync = directory_sync(self.api, db, business)
        feed = FieldPulseChanges(self.api, self.jobs, db)
        self.changes = JobChangePoll(db, self.tenant, feed)
        if config.webhook_secret is not None:
            self.inbound = Inbound(self.changes, hinted, secret=config.webhook_secret, covered=feed.covered)

    @classmethod
    def open(cls, db: Store, business: Business, config: FieldPulseSettings,
             transport: httpx.AsyncBaseTransport | None = None, lanes: Lanes | None = None) -> FieldPulseBackend:
        """`lanes`: the process's (or, over Redis, every replica's) lanes; without, this backend keeps its own."""
        return cls(db, business, config, http_client(config.api_url, transport), lanes=lanes)

    # ----- customers: the directory, plus FieldPulse for what changes by the hour -----
    async def recent_jobs(self, customer_id: str, n: int) -> list[Job]:
        raw = await self.api.get("/jobs", {"filter": where(("customer_id", "=", customer_id)), "sort_by": "created_at",
                                           "sort_dir": "desc", "limit": n, "page": 1})
        return await self.jobs.views(raw[:n], comments=False)

    async def balance(self, customer_id: str) -> Decimal:
        owed = await self.api.all("/invoices", {"filter": where(("customer_id", "=", customer_id))})
        return cents(sum((mapping.money(i.get("balance_due")) for i in owed), Decimal("0")))

    # ----- jobs -----
    async def update_job_status(self, job_id: str, status: JobStatus, note: str | None) -> Job:
        return await self.jobs.set_status(job_id, status, note)

    async def create_invoice(
        self, job_id: str, lines: list[LineItemIn], tax_rate: Decimal, discount: Decimal, allow_additional: bool
    ) -> Billed:
        return await invoices.bill(self.api, self.jobs, job_id, lines, tax_rate, discount, allow_additional)

    # ----- technicians and slots -----
    async def roster(self) -> list[Technician]:
        return list((await self.technicians.all()).values())

    async def busy(self, technicians: list[str], start: datetime, end: datetime) -> dict[str, list[tuple[datetime, datetime]]]:
        spans: dict[str, list[tuple[datetime, datetime]]] = {t: [] for t in technicians}
        for job in await self.jobs.between(start, end):
            b, e = mapping.when(job.get("start_time")), mapping.when(job.get("end_time"))
            if int(job.get("status") or mapping.NEW) in mapping.OPEN and b and e:
                for tech in mapping.assigned(job):
                    if tech in spans:
                        spans[tech].append((b, e))
        return spans

    async def check(self) -> dict[str, Any]:
        """What the connector resolved from FieldPulse, for `fsm-mcp check`; writes nothing."""
        version, techs = await concurrently(lambda: self.api.client.get("/version"), self.technicians.all)
        unskilled = sorted(t.name for t in techs.values() if t.active and not t.skills)
        return {
            "api_url": self.api.settings.api_url,
            "api_version": version,
            "technicians": {t.name: t.skills for t in techs.values() if t.active},
            "technicians_without_skills": unskilled,
            "job_types": {name: self.business.skill_for(name) for name in sorted(self.business.job_types)},
        }
