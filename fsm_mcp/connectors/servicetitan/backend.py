"""The ServiceTitan backend: the Backend Protocol over `api`, `jobs`, `booking`, `invoices`, `sync`."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx2 as httpx

from fsm_mcp.billing import cents
from fsm_mcp.connectors.http.client import Policy, http_client
from fsm_mcp.connectors.http.lanes import Lanes
from fsm_mcp.connectors.servicetitan import invoices, mapping
from fsm_mcp.connectors.servicetitan.api import ServiceTitanApi
from fsm_mcp.connectors.servicetitan.booking import ServiceTitanSteps
from fsm_mcp.connectors.servicetitan.catalog import Settings
from fsm_mcp.connectors.servicetitan.changes import ServiceTitanChanges, hinted
from fsm_mcp.connectors.servicetitan.config import ServiceTitanSettings
from fsm_mcp.connectors.servicetitan.jobs import Jobs
from fsm_mcp.connectors.servicetitan.sync import directory_sync
from fsm_mcp.connectors.vendor import VendorBackend
from fsm_mcp.errors import InvalidInput
from fsm_mcp.events.vendor_hooks import Inbound
from fsm_mcp.events.vendor_poll import JobChangePoll
from fsm_mcp.inputs import LineItemIn
from fsm_mcp.models import Job, JobStatus, Technician
from fsm_mcp.results import Billed
from fsm_mcp.settings import Business
from fsm_mcp.store import Store


class ServiceTitanBackend(VendorBackend):
    vendor = "ServiceTitan"
    jobs: Jobs  # its own, with more than every vendor\'s jobs share

    def __init__(self, db: Store, business: Business, config: ServiceTitanSettings, http: httpx.AsyncClient,
                 policy: Policy | None = None, lanes: Lanes | None = None) -> None:
        super().__init__(db, business, http)
        self.api = ServiceTitanApi(config, http, policy, lanes)
        self.settings = Settings(self.api)
        self.jobs = Jobs(self.api, self.settings, db, business)
        self.steps = ServiceTitanSteps(self.api, self.settings, self.jobs, db, business)
        self.sync = directory_sync(self.api, db, business, page_size=config.sync_page_size)
        self.changes = JobChangePoll(db, self.tenant, ServiceTitanChanges(self.api, self.jobs, db))
        if config.webhook_key is not None or config.webhook_secret is not None:
            self.inbound = Inbound(self.changes, hinted, secret=config.webhook_secret, key=config.webhook_key,
                                   header=config.webhook_signature_header, encoding=config.webhook_signature_encoding)

    @classmethod
    def open(cls, db: Store, business: Business, config: ServiceTitanSettings,
             transport: httpx.AsyncBaseTransport | None = None, lanes: Lanes | None = None) -> ServiceTitanBackend:
        """`lanes`: the process's (or, over Redis, every replica's) lanes; without, this backend keeps its own."""
        return cls(db, business, config, http_client(config.api_url, transport), lanes=lanes)

    # ----- customers: the directory, plus ServiceTitan for what changes by the hour -----
    async def recent_jobs(self, customer_id: str, n: int) -> list[Job]:
        page = await self.api.get("jpm", "jobs", {"customerId": customer_id, "sort": "-CreatedOn", "page": 1, "pageSize": n})
        return await self.jobs.views(page["data"][:n], notes=False)

    async def balance(self, customer_id: str) -> Decimal:
        return cents(mapping.money((await self.api.get("crm", f"customers/{customer_id}")).get("balance")))

    # ----- jobs -----
    async def update_job_status(self, job_id: str, status: JobStatus, note: str | None) -> Job:
        return await self.jobs.set_status(job_id, status, note, self.clock.now())

    async def create_invoice(
        self, job_id: str, lines: list[LineItemIn], tax_rate: Decimal, discount: Decimal, allow_additional: bool
    ) -> Billed:
        return await invoices.bill(self.api, self.jobs, job_id, lines, tax_rate, discount, allow_additional)

    # ----- technicians and slots -----
    async def roster(self) -> list[Technician]:
        return list((await self.settings.catalog()).technicians.values())

    async def busy(self, technicians: list[str], start: datetime, end: datetime) -> dict[str, list[tuple[datetime, datetime]]]:
        appointments = [a for a in await self.api.all("jpm", "appointments", {
            "startsOnOrAfter": mapping.stamp(start), "startsBefore": mapping.stamp(end)})
            if a["status"] not in mapping.CLOSED_VISITS]
        assignments = await self.jobs.assignments([int(a["id"]) for a in appointments]) if appointments else []
        by_id = {a["id"]: a for a in appointments}
        spans: dict[str, list[tuple[datetime, datetime]]] = {t: [] for t in technicians}
        for s in assignments:
            a = by_id.get(s["appointmentId"])
            if a and str(s["technicianId"]) in spans and (b := mapping.when(a["start"])) and (e := mapping.when(a["end"])):
                spans[str(s["technicianId"])].append((b, e))
        return spans

    async def check(self) -> dict[str, Any]:
        """What the connector resolved from ServiceTitan, for `fsm-mcp check`; writes nothing. Raises
        InvalidInput naming the setting when a configured id is not in the tenant."""
        catalog = await self.settings.catalog()
        config = self.api.settings
        for unit in {config.business_unit_id, *config.business_units.values()}:
            if unit not in catalog.business_units:
                raise InvalidInput("business_unit_id", f"business unit {unit} (FSM_MCP_SERVICETITAN_BUSINESS_UNIT_ID or "
                                   f"[servicetitan] business_units) is not in tenant {self.api.tenant}; it has "
                                   f"{', '.join(f'{k} {v}' for k, v in sorted(catalog.business_units.items()))}")
        return {
            "tenant": self.api.tenant,
            "business_units": catalog.business_units,
            "job_types": {name: self.business.skill_for(name) for name in sorted(catalog.job_type_names.values())},
            "technicians": {t.name: t.skills for t in catalog.technicians.values() if t.active},
            "campaign": self.api.settings.campaign_id,
            "default_business_unit": self.api.settings.business_unit_id,
        }
