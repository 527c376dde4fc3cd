"""A business's books as a sink: our invoices go there exactly once, payments recorded there come back.

Posting an invoice (`Sink.post_invoice`), which any number of times, on any replica, after any crash,
makes one invoice in the books:

1. one holder at a time per invoice (a store lease); an invoice already linked is done;
2. its customer: the one linked to ours, else one of the books' customers whom the project's identity
   rules take for ours (`exact` or `likely`, as the person: "Bill Jenkins" with William Jenkins' phone is
   William Jenkins), else a new one, made with an idempotency key derived from our customer's id; the link
   is recorded at once (a recovery point);
3. the invoice, with its lines, discount, tax and the job's reference, made with a key derived from our
   invoice's id (QuickBooks `requestid`, Xero `Idempotency-Key`). After an ambiguous failure (a timeout, a
   lost answer, a 5xx) the books are read back by the invoice's number before anything is sent again
   (the HTTP kit's `check`); the link is recorded;
4. if the business asks it, the books e-mail the invoice (its own key, its own recovery point).

Payments come back as state, not as deltas: on any news of an invoice or payment (a webhook, repeated or
out of order, or a catch-up by change data capture) the invoice is read from the books and ours is set to
its balance, `paid` when nothing is due, with each payment recorded once (`payment.received` goes out for
a payment seen for the first time).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

import anyio
from pydantic import SecretStr

from fsm_mcp.connectors.http.lanes import since
from fsm_mcp.connectors.local import invoices as local_invoices
from fsm_mcp.directory.customers import load_customer
from fsm_mcp.errors import Busy, VendorRejected
from fsm_mcp.identity.emails import try_normalize_email
from fsm_mcp.identity.keys import Profile
from fsm_mcp.identity.names import parse_name
from fsm_mcp.identity.phones import try_parse_phone
from fsm_mcp.identity.scoring import score, settle
from fsm_mcp.models import Customer, Invoice
from fsm_mcp.store import Store
from fsm_mcp.store import accounting as sql
from fsm_mcp.store.leases import Lease

log = logging.getLogger("fsm_mcp")
LEASE = timedelta(seconds=30)  # renewed while held: a process killed mid-post hands the invoice on within this


@asynccontextmanager
async def renewing(lease: Lease) -> AsyncIterator[None]:
    """Keep `lease` taken (renewed a third of its life at a time) while the block runs."""

    async def renew() -> None:
        while True:
            await anyio.sleep(lease.ttl.total_seconds() / 3)
            await lease.take()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(renew)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:  # the block's own failure, as if no task group were there
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


@dataclass(frozen=True, slots=True)
class TheirCustomer:
    id: str
    name: str
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TheirInvoice:
    id: str
    total: Decimal
    balance: Decimal
    payments: tuple[tuple[str, Decimal], ...] = ()  # (their payment id, amount applied to this invoice)


@dataclass(frozen=True, slots=True)
class Posted:
    provider: str
    invoice_id: str
    their_id: str
    customer_id: str  # theirs
    already: bool = False  # it was in the books before this call


@dataclass(frozen=True, slots=True)
class Announced:
    kind: str  # invoice | payment
    id: str
    company: str


# Their invoice id -> the payments (their id -> amount applied) already recorded on our invoice; None: not ours.
Known = Callable[[str], Awaitable[Mapping[str, Decimal] | None]]


class Books(Protocol):
    """One vendor's side, mapped to these types at its edge (fsm_mcp/accounting/<vendor>/)."""

    provider: str
    vendor: str
    company: str

    async def customers_like(self, customer: Customer) -> list[TheirCustomer]: ...
    async def create_customer(self, customer: Customer, display: str, key: str) -> str: ...
    async def create_invoice(self, invoice: Invoice, reference: str, customer: str, email: str | None,
                             key: str) -> str: ...
    async def email_invoice(self, their_id: str, key: str) -> None: ...
    async def invoice(self, their_id: str, known: Known | None = None) -> TheirInvoice: ...
    async def payment(self, their_id: str, known: Known | None = None) -> list[TheirInvoice]: ...
    async def changed_since(self, since: datetime, known: Known | None = None) -> list[TheirInvoice]: ...
    def key(self, kind: str, tenant: str, our_id: str) -> str: ...
    async def probe(self) -> None:
        """One authenticated read: the grant works and the company answers."""
    async def aclose(self) -> None: ...


PaymentSeen = Callable[[str, str, Decimal], Awaitable[None]]  # (our invoice id, their payment id, amount)


@dataclass
class Sink:
    db: Store
    tenant: str
    books: Books
    region: str = "US"
    email_invoices: bool = False
    on_payment: PaymentSeen | None = None  # the seam for `payment.received` on the events outbox
    webhook_key: SecretStr | None = None  # QuickBooks' verifier token, Xero's webhook key
    lease: timedelta = LEASE  # how long a killed process's hold on an invoice (or the outbox) outlives it
    at_once: int = 5  # invoices posted at once from the outbox (the provider's published concurrency)
    _customers: dict[str, anyio.Lock] = field(default_factory=dict)

    @property
    def provider(self) -> str:
        return self.books.provider

    # ----- invoices out -----
    async def post_invoice(self, invoice_id: str, wait: float = 30.0) -> Posted:
        lease = Lease(self.db, f"accounting:{self.tenant}:{self.provider}:invoice:{invoice_id}", self.lease)
        with anyio.move_on_after(wait):
            while not await lease.take():
                await anyio.sleep(0.1)
        if not await lease.take():
            raise Busy(f"another process is posting invoice {invoice_id} to {self.books.vendor}; try again shortly")
        try:
            async with renewing(lease):
                return await self._post(invoice_id)
        finally:
            with anyio.CancelScope(shield=True):
                await lease.release()

    async def _post(self, invoice_id: str) -> Posted:
        invoice = await self.db.aread(local_invoices.load, self.tenant, invoice_id)
        # In the company's lane its requests go before a younger invoice's, a retry's too (on the lane's clock).
        age = max(0.0, (self.db.clock.now() - invoice.created_at).total_seconds())
        began = since.set(time.monotonic() - age)
        try:
            return await self._send(invoice)
        finally:
            since.reset(began)

    async def _send(self, invoice: Invoice) -> Posted:
        tenant, provider, invoice_id = self.tenant, self.provider, invoice.invoice_id
        done = await self.db.aread(sql.linked, tenant, "invoice", invoice_id, provider)
        customer = await self.db.aread(load_customer, tenant, invoice.customer_id)
        theirs = await self.customer(customer)
        already = done is not None
        if done is None:
            email = customer.emails[0] if customer.emails else None
            made = await self.books.create_invoice(invoice, f"Job {invoice.job_id}", theirs, email,
                                                   self.books.key("inv", tenant, invoice_id))
            done = await self.db.awrite(sql.link, tenant, "invoice", invoice_id, provider, made, self.db.clock.now())
        if self.email_invoices and customer.emails and \
                await self.db.aread(sql.linked, tenant, "invoice-sent", invoice_id, provider) is None:
            sent = done
            try:
                await self.books.email_invoice(done, self.books.key("send", tenant, invoice_id))
            except VendorRejected as exc:  # e.g. the books' contact has no address: the invoice stands, unsent
                if exc.status is None or exc.status >= 500 or exc.status in (401, 403):
                    raise
                log.warning("%s would not e-mail invoice %s (HTTP %s); it is in the books, not sent",
                            self.books.vendor, invoice_id, exc.status)
                sent = "refused"
            await self.db.awrite(sql.link, tenant, "invoice-sent", invoice_id, provider, sent, self.db.clock.now())
        return Posted(provider, invoice_id, done, theirs, already)

    async def customer(self, customer: Customer) -> str:
        """Their id for our customer: linked, found by identity, or made (once, in this process and across them)."""
        lock = self._customers.setdefault(customer.customer_id, anyio.Lock())
        async with lock:
            found = await self.db.aread(sql.linked, self.tenant, "customer", customer.customer_id, self.provider)
            if found is not None:
                return found
            candidates = await self.books.customers_like(customer)
            match = self.match(customer, candidates)
            if match is None:
                namesake = any(c.name.strip().lower() == customer.name.strip().lower() for c in candidates)
                display = f"{customer.name} ({customer.customer_id[-6:]})" if namesake else customer.name
                match = await self.books.create_customer(
                    customer, display, self.books.key("cus" if not namesake else "cus2", self.tenant, customer.customer_id))
            return await self.db.awrite(sql.link, self.tenant, "customer", customer.customer_id, self.provider, match,
                                        self.db.clock.now())

    def match(self, customer: Customer, candidates: list[TheirCustomer]) -> str | None:
        """The books' customer the identity rules take for ours, as the same person (never a household member)."""
        query = Profile(name=parse_name(customer.name), name_raw=customer.name,
                        phones={p.number for p in customer.phones}, emails=set(customer.emails))
        scored = []
        for their in candidates:
            record = Profile(name=parse_name(their.name), name_raw=their.name,
                             phones={p.e164 for p in (try_parse_phone(n, self.region) for n in their.phones) if p},
                             emails={e for e in map(try_normalize_email, their.emails) if e})
            if (found := score(query, record, their.id, {})) is not None:
                scored.append(found)
        best = next(iter(settle(scored)), None)
        if best is not None and best.confidence in ("exact", "likely") and best.level == "contact":
            return best.customer_id
        return None

    # ----- payments back -----
    async def refresh(self, state: TheirInvoice) -> bool:
        """Our invoice as the books have it now; False when it is not one of ours."""
        ours = await self.db.aread(sql.ours, self.tenant, self.provider, "invoice", state.id)
        if ours is None:
            return False
        async with self.db.atomic():  # the payment and its announcement stand or fall together
            new = await self.db.awrite(sql.apply_payments, self.tenant, self.provider, ours, list(state.payments),
                                       state.balance, self.db.clock.now())
            if self.on_payment is not None:
                amounts = dict(state.payments)
                for payment in new:
                    await self.on_payment(ours, payment, amounts[payment])
        return True

    async def known(self, their_invoice: str) -> Mapping[str, Decimal] | None:
        """The payments recorded on our invoice that is `their_invoice` in the books; None if it is not ours."""
        ours = await self.db.aread(sql.ours, self.tenant, self.provider, "invoice", their_invoice)
        if ours is None:
            return None
        return await self.db.aread(sql.recorded_payments, self.tenant, self.provider, ours)

    async def announced(self, news: list[Announced]) -> int:
        """Apply what a webhook announced (ids only), reading each invoice it concerns from the books once: a
        payment new to us is read for the invoices it pays (and they with it); one already recorded names its
        invoices, which are read (their balance is the news), not it; an invoice of ours is read."""
        mine = [item for item in dict.fromkeys(news) if item.company.lower() == self.books.company.lower()]
        applied = 0
        invoices: dict[str, None] = {}  # to read, in the order announced
        fresh: set[str] = set()  # read already, with a payment new to us
        for item in mine:
            if item.kind == "payment":
                recorded = await self.db.aread(sql.invoices_paid_by, self.tenant, self.provider, item.id)
                if recorded:
                    invoices.update(dict.fromkeys(recorded))
                    continue
                for state in await self.books.payment(item.id, self.known):
                    applied += await self.refresh(state)
                    fresh.add(state.id)
            elif item.kind == "invoice" and \
                    await self.db.aread(sql.ours, self.tenant, self.provider, "invoice", item.id) is not None:
                invoices[item.id] = None  # (not one we posted: nothing to read)
        for their in invoices:
            if their not in fresh:
                applied += await self.refresh(await self.books.invoice(their, self.known))
        return applied

    async def catch_up(self, since: datetime | None = None) -> int:
        """Change data capture since the last catch-up (or `since`): payments made while no webhook reached us."""
        started = self.db.clock.now()
        if since is None:
            cursor = await self.db.aread(sql.get_cursor, self.tenant, self.provider, "changes")
            since = datetime.fromisoformat(cursor) if cursor else started - timedelta(days=29)
        applied = 0
        for state in await self.books.changed_since(since, self.known):
            applied += await self.refresh(state)
        # The next one starts a minute before this one did: a change stamped as this one began is not missed.
        await self.db.awrite(sql.set_cursor, self.tenant, self.provider, "changes",
                             (started - timedelta(minutes=1)).isoformat())
        return applied

    async def aclose(self) -> None:
        await self.books.aclose()


__all__ = ["Announced", "Books", "Known", "Posted", "Sink", "TheirCustomer", "TheirInvoice"]
