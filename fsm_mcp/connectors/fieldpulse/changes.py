"""FieldPulse's changed jobs, for the job-change poll (`events/vendor_poll.py`) and its webhooks.

A job holds its window, status and technicians (assignments) itself, so its `updated_at` is its version; the
list takes `filter` on updated_at and is paged in creation order, where a change moves nothing (paged by
updated_at, a record changed meanwhile would move behind the pages read and push another past them). The
statuses fsm-mcp noted as comments (arrived or working) count only with the comments, read for the jobs in
progress that fsm-mcp last knew arrived or working.

Invoices and payments (`FieldPulseMoney`) take the same `filter` on updated_at. Invoices are paged in creation
order; payments sort only by cuid, method, amount or payment_date (the parameter's description), and are paged
by cuid, which a change does not move. A FieldPulse invoice is posted whole, so it is billed once it exists.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fsm_mcp.connectors.fieldpulse import mapping
from fsm_mcp.connectors.fieldpulse.api import FieldPulseApi, where
from fsm_mcp.connectors.fieldpulse.jobs import Jobs
from fsm_mcp.errors import NotFound, VendorRejected
from fsm_mcp.events.vendor_invoices import InvoiceSighting, MoneyFeed, PaymentSighting
from fsm_mcp.events.vendor_jobs import Sighting, noted, position
from fsm_mcp.models import JobStatus
from fsm_mcp.store import Store

Json = dict[str, Any]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MARKED = (JobStatus.arrived, JobStatus.working)  # FieldPulse's one "in progress": the comments tell which


class FieldPulseChanges:
    def __init__(self, api: FieldPulseApi, jobs: Jobs, db: Store) -> None:
        self.api, self.jobs, self.db = api, jobs, db
        self.tenant = jobs.business.tenant_id
        self.name = "fieldpulse:jobs"
        self.money: MoneyFeed | None = FieldPulseMoney(api)

    async def since(self, moment: datetime) -> list[Sighting]:
        after = await position(self.db, self.tenant)
        raws = await self.api.all("/jobs", {"filter": where(("updated_at", ">=", mapping.stamp(moment))),
                                            "sort_by": "created_at", "sort_dir": "asc"})
        return await self._sightings(raws, after)

    async def sighting(self, job_id: str) -> Sighting | None:
        after = await position(self.db, self.tenant)
        try:
            raw = await self.jobs.raw(job_id)
        except NotFound:
            return None
        return (await self._sightings([raw], after))[0]

    async def _sightings(self, raws: list[Json], after: int) -> list[Sighting]:
        views = await self.jobs.views(raws, comments=False)
        maybe = [i for i, v in enumerate(views) if v.status in MARKED]
        known = await noted(self.db, self.tenant, [views[i].job_id for i in maybe])
        if read := [i for i in maybe if views[i].job_id in known]:
            for i, view in zip(read, await self.jobs.views([raws[i] for i in read], comments=True), strict=True):
                views[i] = view
        return [Sighting(job=view, modified=mapping.when(raw.get("updated_at")) or EPOCH, after=after)
                for raw, view in zip(raws, views, strict=True)]


class FieldPulseMoney:
    vendor, settles = "fieldpulse", False

    def __init__(self, api: FieldPulseApi) -> None:
        self.api = api

    async def invoices(self, since: datetime) -> list[InvoiceSighting]:
        rows = await self.api.all("/invoices", {"filter": where(("updated_at", ">=", mapping.stamp(since))),
                                                "sort_by": "created_at", "sort_dir": "asc"})
        return [invoice_sighting(raw) for raw in rows]

    async def payments(self, since: datetime) -> list[PaymentSighting]:
        rows = await self.api.all("/payments", {"filter": where(("updated_at", ">=", mapping.stamp(since))),
                                                "sort_by": "cuid", "sort_dir": "asc"})
        return [PaymentSighting(payment_id=str(raw["id"]), invoice_id=str(raw["invoice_id"]), job_id=None,
                                amount=mapping.money(raw.get("amount")), modified=mapping.when(raw.get("updated_at")))
                for raw in rows if raw.get("invoice_id") not in (None, "")]

    async def jobs_of(self, invoice_ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for invoice_id in invoice_ids:
            if not invoice_id.isdigit():
                continue
            try:
                raw = await self.api.get(f"/invoices/{invoice_id}")
            except VendorRejected as exc:
                if exc.status == 404:
                    continue
                raise
            if raw.get("job_id") not in (None, ""):
                found[invoice_id] = str(raw["job_id"])
        return found


def invoice_sighting(raw: Json) -> InvoiceSighting:
    total, balance = mapping.money(raw.get("total")), mapping.money(raw.get("balance_due"))
    job = raw.get("job_id")
    return InvoiceSighting(invoice_id=str(raw["id"]), job_id=None if job in (None, "") else str(job),
                           customer_id=str(raw.get("customer_id") or ""),
                           status="paid" if total > 0 and balance == 0 else "open", total=total, balance=balance,
                           billed=True, modified=mapping.when(raw.get("updated_at")))


def hinted(payload: Any) -> list[str]:
    """The job a FieldPulse webhook names: its `message` is "CREATE ON JOBS" or "UPDATE ON JOBS FOR <field>",
    its `data` the job (`id`) or a change of it (`object.id`). An estimate's or invoice's names none."""
    if not isinstance(payload, dict) or " ON JOBS" not in str(payload.get("message") or "").upper():
        return []
    data = payload.get("data")
    if not isinstance(data, dict):
        return []
    value = data["object"].get("id") if isinstance(data.get("object"), dict) else data.get("id")
    return [str(value)] if value is not None and str(value).isdigit() else []
