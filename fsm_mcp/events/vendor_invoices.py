"""Polling a vendor for its invoices and payments: `invoice.created` for an invoice billed at the vendor for a
job fsm-mcp knows, `payment.received` for each payment applied to one, each recorded once.

Each has a cursor of its own, kept as the job poll keeps its (`vendor_poll`): the window starts `overlap`
before it, the cursor moves only after the window's sightings are applied, never back and never past the time
the poll began; where the vendor's records carry no modification time (ServiceTitan's payments, Housecall
Pro's invoices) it moves to that time, our clock, and the overlap absorbs a skew smaller than itself.

A sighting already applied at its version is left out without a transaction. The others are applied one
transaction each, the business's feed held first: a record is reported once (`store.vendor_changes.save_money`
marks it; the outbox's one `invoice.created` per invoice also keeps the poll and fsm-mcp's own invoicing from
both announcing one), so a repeated, late or out-of-order sighting has one effect. Not reported, and not
marked, so that a later change of it is looked at again:

- an invoice not billed yet (ServiceTitan opens an empty invoice with every job), or for a job fsm-mcp has
  never known (booked before it was watching, or a job the job poll has not read yet);
- a payment on an invoice of such a job;
- on a vendor whose invoices are filled one request at a time (ServiceTitan), an invoice seen while one of
  fsm-mcp's own invoicing calls is under way: it may be half filled, and the call announces it itself. The
  cursor then stays before it, so the next poll reads it again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import anyio

from fsm_mcp.events import outbox
from fsm_mcp.store import Store
from fsm_mcp.store import events as events_sql
from fsm_mcp.store import vendor_changes as sql
from fsm_mcp.store.vendor_changes import stamp

OVERLAP = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class InvoiceSighting:
    invoice_id: str
    job_id: str | None
    customer_id: str
    status: str  # open | paid | ... as the vendor says
    total: Decimal
    balance: Decimal
    billed: bool  # False: the vendor's empty shell, no bill yet
    modified: datetime | None  # the vendor's time of this version; None where it gives none


@dataclass(frozen=True, slots=True)
class PaymentSighting:
    payment_id: str
    invoice_id: str
    job_id: str | None  # None: the invoice's job, as seen by the invoice poll
    amount: Decimal  # applied to this invoice
    modified: datetime | None

    @property
    def key(self) -> str:  # a payment may be split over several invoices (ServiceTitan): one event each
        return f"{self.payment_id}>{self.invoice_id}"


class MoneyFeed(Protocol):
    """A vendor's invoices and payments, as the poll reads them."""

    vendor: str
    settles: bool  # its invoices are filled one request at a time (ServiceTitan)

    async def invoices(self, since: datetime) -> list[InvoiceSighting]:
        """The invoices modified (or, where that is all the vendor offers, created) at or after `since`."""
        ...

    async def payments(self, since: datetime) -> list[PaymentSighting]:
        """The payments modified at or after `since`."""
        ...

    async def jobs_of(self, invoice_ids: list[str]) -> dict[str, str]:
        """The jobs these invoices bill (invoice id -> job id), read from the vendor: for payments on invoices the
        invoice poll has not seen (changed before fsm-mcp was watching)."""
        ...


class MoneyChangePoll:
    def __init__(self, db: Store, tenant: str, feed: MoneyFeed, overlap: timedelta = OVERLAP) -> None:
        self.db, self.tenant, self.feed, self.overlap = db, tenant, feed, overlap
        self._lock = anyio.Lock()

    async def run(self) -> int:
        """One poll of invoices, then of payments (a payment's invoice is seen first); the events recorded."""
        async with self._lock:
            return await self._invoices() + await self._payments()

    async def _window(self, name: str) -> tuple[datetime | None, datetime, datetime]:
        cursor = await self.db.aread(sql.cursor, self.tenant, name)
        began = self.db.clock.now()
        return cursor, began, (cursor if cursor is not None else began) - self.overlap

    async def _move(self, name: str, cursor: datetime | None, began: datetime, start: datetime,
                    times: list[datetime | None], held: datetime | None) -> None:
        known = [t for t in times if t is not None]
        newest = min(max(known, default=cursor or start), began) if len(known) == len(times) else began
        if held is not None:  # read again next time: a little before it, as the window would
            newest = min(newest, held)
        await self.db.awrite(sql.save_cursor, self.tenant, name, newest, self.db.clock.now())

    async def _invoices(self) -> int:
        name = f"{self.feed.vendor}:invoices"
        cursor, began, start = await self._window(name)
        sightings = await self.feed.invoices(start)
        seen = await self._seen("invoice", [s.invoice_id for s in sightings])
        fresh = [s for s in sightings if _fresh(seen.get(s.invoice_id), s.modified)]
        underway = False
        if self.feed.settles and any(s.billed for s in fresh):
            underway = await self.db.aread(sql.invoicing_underway, self.tenant, self.db.clock.now())
        recorded, held = 0, None
        for s in sorted(fresh, key=lambda s: s.modified or began):
            if underway and s.billed:
                held = min(held or began, s.modified or began)
                continue
            recorded += await self.db.awrite(self._invoice, s)
        await self._move(name, cursor, began, start, [s.modified for s in sightings], held)
        return recorded

    def _invoice(self, conn: Any, s: InvoiceSighting) -> int:
        if s.job_id is None:
            return 0
        events_sql.hold(conn, self.tenant)
        if not sql.job_known(conn, self.tenant, s.job_id):
            return 0  # not marked: a later change of it is looked at again
        now = self.db.clock.now()
        if not sql.save_money(conn, self.tenant, "invoice", s.invoice_id, s.job_id, s.modified, s.billed, now):
            return 0
        customer = s.customer_id
        if not customer and (last := events_sql.last_of_subject(conn, self.tenant, "job", s.job_id)) is not None:
            customer = json.loads(last["data"]).get("customer_id") or ""  # Housecall Pro's invoices name none
        return outbox.insert_unreported(conn, now, self.tenant, "invoice", s.invoice_id, [("invoice.created", {
            "invoice_id": s.invoice_id, "job_id": s.job_id, "customer_id": customer, "status": s.status,
            "total": str(s.total), "balance": str(s.balance), "provider": self.feed.vendor})])

    async def _payments(self) -> int:
        name = f"{self.feed.vendor}:payments"
        cursor, began, start = await self._window(name)
        sightings = await self.feed.payments(start)
        seen = await self._seen("payment", [s.key for s in sightings])
        fresh = [s for s in sightings if _fresh(seen.get(s.key), s.modified)]
        wanted = sorted({s.invoice_id for s in fresh if s.job_id is None})
        jobs = {i: job for i, (_, _, job) in (await self._seen("invoice", wanted)).items() if job is not None}
        if missing := [i for i in wanted if i not in jobs]:
            jobs.update(await self.feed.jobs_of(missing))
        recorded = 0
        for s in sorted(fresh, key=lambda s: s.modified or began):
            recorded += await self.db.awrite(self._payment, s, jobs.get(s.invoice_id))
        await self._move(name, cursor, began, start, [s.modified for s in sightings], None)
        return recorded

    def _payment(self, conn: Any, s: PaymentSighting, job_id: str | None) -> int:
        job_id = s.job_id or job_id
        if job_id is None or s.amount <= 0:
            return 0
        events_sql.hold(conn, self.tenant)
        if not sql.job_known(conn, self.tenant, job_id):
            return 0
        now = self.db.clock.now()
        if not sql.save_money(conn, self.tenant, "payment", s.key, job_id, s.modified, True, now):
            return 0
        outbox.insert(conn, self.tenant, now, "payment.received", "payment", f"{self.feed.vendor}:{s.payment_id}", {
            "payment_id": s.payment_id, "invoice_id": s.invoice_id, "job_id": job_id, "amount": str(s.amount),
            "provider": self.feed.vendor})
        return 1

    async def _seen(self, kind: str, ids: list[str]) -> dict[str, tuple[str | None, bool, str | None]]:
        return await self.db.aread(sql.money_seen, self.tenant, kind, ids) if ids else {}


def _fresh(seen: tuple[str | None, bool, str | None] | None, modified: datetime | None) -> bool:
    """Worth a transaction: not reported yet, and not seen at this version (an empty shell seen again as it was)."""
    if seen is None:
        return True
    at, reported, _ = seen
    return not reported and (modified is None or at != stamp(modified))
