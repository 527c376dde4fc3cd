"""Housecall Pro's changed jobs, for the job-change poll (`events/vendor_poll.py`).

GET /jobs takes no filter on modification, but sorts by `updated_at`: the poll reads newest first and stops
at the first page that reaches past the window's start. Newest first, a job changed while the pages are
read moves to the front (a page already read): the others shift one place back, so one may be read twice,
none skipped; the moved one is in the next window (the poll's cursor stops at the time it began). A job
holds its schedule, employees, work status and notes, so its `updated_at` is its version. No Housecall Pro
webhooks are received: the poll is the only way its changes are heard.

Invoices and payments (`HousecallProMoney`): GET /invoices filters on creation (`created_at_min`) and on
payment in full (`paid_at_min`), not on modification, and an invoice carries no modification time; payments
come only inside their invoice. So an invoice is seen in the window after it is made, and its payments there
and in the window after it is paid in full: a partial payment on an older invoice is heard when the invoice
is paid off. Both lists are paged in creation order, where a change moves nothing. An invoice is named by its
invoice number, as `create_invoice` names the one it makes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fsm_mcp.connectors.housecallpro import mapping
from fsm_mcp.connectors.housecallpro.api import MOST, HousecallProApi
from fsm_mcp.connectors.housecallpro.jobs import Jobs
from fsm_mcp.connectors.sync import BUDGET
from fsm_mcp.errors import NotFound
from fsm_mcp.events.vendor_invoices import InvoiceSighting, MoneyFeed, PaymentSighting
from fsm_mcp.events.vendor_jobs import Sighting, position
from fsm_mcp.store import Store

Json = dict[str, Any]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class HousecallProChanges:
    def __init__(self, api: HousecallProApi, jobs: Jobs, db: Store) -> None:
        self.api, self.jobs, self.db = api, jobs, db
        self.tenant = jobs.business.tenant_id
        self.name = "housecallpro:jobs"
        self.money: MoneyFeed | None = HousecallProMoney(api)

    async def since(self, moment: datetime) -> list[Sighting]:
        after = await position(self.db, self.tenant)
        found: dict[str, Json] = {}
        page = 1
        while True:
            body = await self.api.get("/jobs", {"sort_by": "updated_at", "sort_direction": "desc", "page": page,
                                                "page_size": MOST}, budget=BUDGET)
            rows = body.get("jobs") or []
            for raw in rows:
                if _version(raw) >= moment:
                    found.setdefault(str(raw["id"]), raw)
            if not rows or _version(rows[-1]) < moment or page >= int(body.get("total_pages") or 0):
                break
            page += 1
        return [Sighting(job=self.jobs.view(raw), modified=_version(raw), after=after) for raw in found.values()]

    async def sighting(self, job_id: str) -> Sighting | None:
        after = await position(self.db, self.tenant)
        try:
            raw = await self.jobs.raw(job_id)
        except NotFound:
            return None
        return Sighting(job=self.jobs.view(raw), modified=_version(raw), after=after)

    async def sightings(self, job_ids: list[str]) -> list[Sighting]:
        """The jobs read whole now, one after another (the API reads a job by its id alone)."""
        return [s for job_id in dict.fromkeys(job_ids) if (s := await self.sighting(job_id)) is not None]


FAILED = {"failed", "canceled", "cancelled", "voided", "refunded", "declined"}  # a payment that paid nothing


class HousecallProMoney:
    vendor, settles = "housecallpro", False

    def __init__(self, api: HousecallProApi) -> None:
        self.api = api
        self._made: list[Json] = []  # the invoices the last window of invoices read: their payments too

    async def invoices(self, since: datetime) -> list[InvoiceSighting]:
        self._made = await self._list({"created_at_min": mapping.stamp(since)})
        return [invoice_sighting(raw) for raw in self._made]

    async def payments(self, since: datetime) -> list[PaymentSighting]:
        rows = {str(raw["id"]): raw for raw in [*self._made, *await self._list({"paid_at_min": mapping.stamp(since)})]}
        return [PaymentSighting(payment_id=str(p["id"]), invoice_id=_number(raw), job_id=str(raw["job_id"]),
                                amount=mapping.money(p.get("amount")), modified=None)
                for raw in rows.values() if raw.get("job_id") for p in raw.get("payments") or []
                if str(p.get("status") or "").lower() not in FAILED]

    async def jobs_of(self, invoice_ids: list[str]) -> dict[str, str]:
        return {}  # a payment is read inside its invoice, which names the job

    async def _list(self, params: Json) -> list[Json]:
        rows: list[Json] = []
        page = 1
        while True:
            body = await self.api.get("/invoices", {**params, "sort_by": "created_at", "sort_direction": "asc",
                                                    "page": page, "page_size": MOST}, budget=BUDGET)
            rows += body.get("invoices") or []
            if page >= int(body.get("total_pages") or 0):
                return rows
            page += 1


def _number(raw: Json) -> str:
    return str(raw.get("invoice_number") or raw["id"])


def invoice_sighting(raw: Json) -> InvoiceSighting:
    total, balance = mapping.money(raw.get("amount")), mapping.money(raw.get("due_amount"))
    return InvoiceSighting(invoice_id=_number(raw), job_id=str(raw["job_id"]) if raw.get("job_id") else None,
                           customer_id="", status=mapping.invoice_state(raw.get("status")), total=total,
                           balance=balance, billed=True, modified=None)


def _version(raw: Json) -> datetime:
    return mapping.when(raw.get("updated_at"), UTC) or EPOCH
