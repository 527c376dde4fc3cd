"""FieldPulse's changed jobs, for the job-change poll (`events/vendor_poll.py`) and its webhooks.

A job holds its window, status and technicians (assignments) itself, so its `updated_at` is its version; the
list takes `filter` on updated_at and is paged in creation order, where a change moves nothing (paged by
updated_at, a record changed meanwhile would move behind the pages read and push another past them); its
pages after a full first one are asked several at a time (`FieldPulseApi.ahead`). The
statuses fsm-mcp noted as comments (arrived or working) count only with the comments, read for the jobs in
progress that fsm-mcp last knew arrived or working.

Invoices and payments (`FieldPulseMoney`) take the same `filter` on updated_at. Invoices are paged in creation
order; payments sort only by cuid, method, amount or payment_date (the parameter's description), and are paged
by cuid, which a change does not move. A FieldPulse invoice is posted whole, so it is billed once it exists.

A webhook's job is read again (`sighting`) unless the job as last read here, and applied at that version,
already shows what the delivery announces (`covered`): the field it names holding its `new_value`, or a version
(`updated_at`) it carries applied already. FieldPulse delivers a change one to three times, some seconds
apart; the copies after the first then cost no request. A copy that announces what the last read did not show
(sent before the change could be read, or about a later change) is read.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any

from fsm_mcp.connectors.fieldpulse import mapping
from fsm_mcp.connectors.fieldpulse.api import FieldPulseApi, where
from fsm_mcp.connectors.fieldpulse.jobs import Jobs
from fsm_mcp.errors import NotFound, VendorRejected
from fsm_mcp.events.vendor_invoices import InvoiceSighting, MoneyFeed, PaymentSighting
from fsm_mcp.events.vendor_jobs import Sighting, applied, noted, position, versions
from fsm_mcp.models import JobStatus
from fsm_mcp.store import Store

Json = dict[str, Any]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MARKED = (JobStatus.arrived, JobStatus.working)  # FieldPulse's one "in progress": the comments tell which
REMEMBERED = 10_000  # jobs whose last read is kept for the webhooks' copies (the oldest forgotten first)
RECENT = timedelta(minutes=1)  # how long a read serves the copies of a delivery (they come seconds apart)


class FieldPulseChanges:
    def __init__(self, api: FieldPulseApi, jobs: Jobs, db: Store) -> None:
        self.api, self.jobs, self.db = api, jobs, db
        self.tenant = jobs.business.tenant_id
        self.name = "fieldpulse:jobs"
        self.money: MoneyFeed | None = FieldPulseMoney(api)
        self.last: OrderedDict[str, tuple[Json, datetime]] = OrderedDict()  # job id -> (the job as last read here, when)

    async def covered(self, payload: Any, job_id: str) -> bool:
        """Whether the delivery needs no read of the job: the job as last read and applied shows what it announces."""
        field, value, version = announced(payload)
        if version is not None:
            have = (await versions(self.db, self.tenant, [job_id])).get(job_id)
            if have is not None and have > version:  # a later version applied (FieldPulse's times are to the second)
                return True
        raw, read_at = self.last.get(job_id) or ({}, EPOCH)
        if field is None or self.db.clock.now() - read_at > RECENT or (at := mapping.when(raw.get("updated_at"))) is None:
            return False
        # No custom status on the job: a status delivery names its `status`.
        shown = raw.get(field) if field != "status_id" or raw.get("status_id") is not None else raw.get("status")
        if shown is None or str(shown) != str(value):
            return False
        return job_id in await applied(self.db, self.tenant, {job_id: at})

    def _remember(self, raws: list[Json]) -> None:
        now = self.db.clock.now()
        for raw in raws:
            job_id, at = str(raw["id"]), mapping.when(raw.get("updated_at")) or EPOCH
            before = self.last.get(job_id)
            if before is not None and (mapping.when(before[0].get("updated_at")) or EPOCH) > at:
                continue  # a read that lost a race with a newer one
            self.last[job_id] = (raw, now)
            self.last.move_to_end(job_id)
        while len(self.last) > REMEMBERED:
            self.last.popitem(last=False)

    async def since(self, moment: datetime) -> list[Sighting]:
        after = await position(self.db, self.tenant)
        raws = await self.api.ahead("/jobs", {"filter": where(("updated_at", ">=", mapping.stamp(moment))),
                                                "sort_by": "created_at", "sort_dir": "asc"})
        return await self._sightings(raws, after)

    async def sighting(self, job_id: str) -> Sighting | None:
        after = await position(self.db, self.tenant)
        try:
            raw = await self.jobs.raw(job_id)
        except NotFound:
            return None
        return (await self._sightings([raw], after))[0]

    async def sightings(self, job_ids: list[str]) -> list[Sighting]:
        """The jobs read whole now, one after another (the API reads a job by its id alone)."""
        return [s for job_id in dict.fromkeys(job_ids) if (s := await self.sighting(job_id)) is not None]

    async def _sightings(self, raws: list[Json], after: int) -> list[Sighting]:
        self._remember(raws)
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


def announced(payload: Any) -> tuple[str | None, Any, datetime | None]:
    """(the field a job delivery says changed, its new value, the job's `updated_at` it carries): "UPDATE ON JOBS
    FOR status_id" with `data` {"old_value", "new_value", "object": {"id", ...}}; a creation carries no field."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        return None, None, None
    message = str(payload.get("message") or "")
    change = isinstance(data.get("object"), dict)
    record = data["object"] if change else data
    try:
        version = mapping.when(record.get("updated_at"))
    except (TypeError, ValueError):
        version = None
    field = (message.partition(" FOR ")[2].strip() or None) if change and "new_value" in data else None
    return field, data.get("new_value") if field else None, version


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
