"""ServiceTitan's changed jobs, for the job-change poll (`events/vendor_poll.py`).

A job's state lives in three records: the job (its status, completion), its first appointment (the window,
the visit's status) and that appointment's assignments (the technicians). Jobs and appointments both take
`modifiedOnOrAfter` (and `sort=+ModifiedOn`); assignments take no date at all, so an assignment that touches
neither record is seen by a webhook, or when the job or its appointment next changes. A job's version is the
newer of its own modifiedOn and its first appointment's, the same whichever way it was found.

Invoices and payments (`ServiceTitanMoney`): both accounting lists take `modifiedOnOrAfter` and no sort (the
invoices' `orderBy` names no values), so they are read in the API's own order. ServiceTitan opens an empty
invoice with every job: it is billed once it has items. A payment carries no modification time and is split
over invoices (`appliedTo`): one sighting per invoice it pays.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fsm_mcp.connectors.servicetitan import mapping
from fsm_mcp.connectors.servicetitan.api import ServiceTitanApi
from fsm_mcp.connectors.servicetitan.jobs import Jobs
from fsm_mcp.connectors.sync import BUDGET
from fsm_mcp.errors import NotFound
from fsm_mcp.events.vendor_invoices import InvoiceSighting, MoneyFeed, PaymentSighting
from fsm_mcp.events.vendor_jobs import Sighting, applied, noted, position
from fsm_mcp.models import JobStatus
from fsm_mcp.store import Store

Json = dict[str, Any]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MARKED = (JobStatus.dispatched, JobStatus.en_route)  # where a status fsm-mcp noted on the job may count


class ServiceTitanChanges:
    def __init__(self, api: ServiceTitanApi, jobs: Jobs, db: Store) -> None:
        self.api, self.jobs, self.db = api, jobs, db
        self.tenant = jobs.business.tenant_id
        self.name = "servicetitan:jobs"
        self.money: MoneyFeed | None = ServiceTitanMoney(api)

    async def since(self, moment: datetime) -> list[Sighting]:
        after = await position(self.db, self.tenant)
        changed = {"modifiedOnOrAfter": mapping.stamp(moment), "sort": "+ModifiedOn"}
        raws = {j["id"]: j for j in await self._all("jpm", "jobs", changed)}
        visits = await self._all("jpm", "appointments", changed)
        missing = sorted({int(a["jobId"]) for a in visits} - set(raws))
        if missing:
            raws.update((j["id"], j) for j in await self.api.ids("jpm", "jobs", missing))
        # A first appointment not in the list was not modified in the window, so is older than its job's own time:
        # each job's version is known from the two lists, and a job already applied at it is not read again.
        moved = {a["id"]: a for a in visits}
        versions = {str(j["id"]): _version(j, moved) for j in raws.values()}
        done = await applied(self.db, self.tenant, versions)
        return await self._sightings([j for j in raws.values() if str(j["id"]) not in done], after)

    async def sighting(self, job_id: str) -> Sighting | None:
        after = await position(self.db, self.tenant)
        try:
            raw = await self.jobs.raw(job_id)
        except NotFound:
            return None
        return (await self._sightings([raw], after))[0]

    async def sightings(self, job_ids: list[str]) -> list[Sighting]:
        """The jobs read whole now, together: three requests for up to 50 jobs (the job list by `ids`, their
        first appointments, those appointments' assignments)."""
        after = await position(self.db, self.tenant)
        raws = await self.api.ids("jpm", "jobs", sorted({int(i) for i in job_ids if i.isdigit()}))
        return await self._sightings(raws, after)

    async def _all(self, module: str, path: str, params: Json) -> list[Json]:
        return await _pages(self.api, module, path, params)

    async def _sightings(self, raws: list[Json], after: int) -> list[Sighting]:
        if not raws:
            return []
        first = await self.api.ids("jpm", "appointments", [int(j["firstAppointmentId"]) for j in raws])
        visits = {a["id"]: a for a in first}
        views = await self.jobs.views(raws, notes=False, first_visits=first)
        # A status fsm-mcp noted on the job (en route, arrived, working) counts only with the notes: read them
        # for the jobs where it may, and which fsm-mcp last knew in one of those statuses.
        maybe = [i for i, v in enumerate(views) if v.status in MARKED]
        known = await noted(self.db, self.tenant, [views[i].job_id for i in maybe])
        with_notes = [i for i in maybe if views[i].job_id in known]
        if with_notes:
            for i, view in zip(with_notes, await self.jobs.views([raws[i] for i in with_notes], notes=True), strict=True):
                views[i] = view

        return [Sighting(job=view, modified=_version(raw, visits), after=after) for raw, view in zip(raws, views, strict=True)]


async def _pages(api: ServiceTitanApi, module: str, path: str, params: Json) -> list[Json]:
    rows: list[Json] = []
    page = 1
    while True:
        body = await api.get(module, path, {**params, "page": page, "pageSize": 5000}, budget=BUDGET)
        rows += body["data"]
        if not body.get("hasMore"):
            return rows
        page += 1


class ServiceTitanMoney:
    vendor, settles = "servicetitan", True  # items are added to the job's invoice one request at a time

    def __init__(self, api: ServiceTitanApi) -> None:
        self.api = api

    async def invoices(self, since: datetime) -> list[InvoiceSighting]:
        rows = await _pages(self.api, "accounting", "invoices", {"modifiedOnOrAfter": mapping.stamp(since)})
        return [invoice_sighting(raw) for raw in rows]

    async def payments(self, since: datetime) -> list[PaymentSighting]:
        rows = await _pages(self.api, "accounting", "payments", {"modifiedOnOrAfter": mapping.stamp(since)})
        return [PaymentSighting(payment_id=str(raw["id"]), invoice_id=str(split["appliedTo"]), job_id=None,
                                amount=mapping.money(split.get("appliedAmount")), modified=None)
                for raw in rows for split in raw.get("appliedTo") or [] if split.get("appliedTo") is not None]

    async def jobs_of(self, invoice_ids: list[str]) -> dict[str, str]:
        found = await self.api.ids("accounting", "invoices", [int(i) for i in invoice_ids if i.isdigit()])
        return {str(raw["id"]): str(raw["job"]["id"]) for raw in found if (raw.get("job") or {}).get("id") is not None}


def invoice_sighting(raw: Json) -> InvoiceSighting:
    total, balance = mapping.money(raw.get("total")), mapping.money(raw.get("balance"))
    job = (raw.get("job") or {}).get("id")
    return InvoiceSighting(invoice_id=str(raw["id"]), job_id=None if job is None else str(job),
                           customer_id=str((raw.get("customer") or {}).get("id", "")),
                           status="paid" if total > 0 and balance == 0 else "open", total=total, balance=balance,
                           billed=bool(raw.get("items")), modified=mapping.when(raw.get("modifiedOn")))


def _version(raw: Json, visits: dict[Any, Json]) -> datetime:
    """The newer of the job's modifiedOn and its first appointment's (when that is among `visits`)."""
    times = [mapping.when(raw.get("modifiedOn")), mapping.when(visits.get(raw["firstAppointmentId"], {}).get("modifiedOn"))]
    return max((t for t in times if t is not None), default=EPOCH)


def hinted(payload: Any) -> list[str]:
    """The jobs a ServiceTitan webhook names. Its body is not in the published spec: a job id is looked for as
    `jobId`, `job.id` or `id`, at the top level or under `data` / `eventData`, in one object or a list of them."""
    found: list[str] = []
    for item in payload if isinstance(payload, list) else [payload]:
        if not isinstance(item, dict):
            continue
        for part in (item, item.get("data"), item.get("eventData")):
            if not isinstance(part, dict):
                continue
            job = part.get("job")
            value = part.get("jobId") or (job.get("id") if isinstance(job, dict) else None) or part.get("id")
            if value is not None and str(value).isdigit():
                found.append(str(value))
                break
    return list(dict.fromkeys(found))
