"""Automations: what follows a job's completion without anybody asking, through the same services as a tool,
acting as the system actor `system:automation` (the audit log shows it).

- **Job completed → invoice.** For each `job.completed` in a business's feed, read by cursor: the lines the
  completion carried (`update_job_status(lines=...)`), else the business's `price_list` for the job type, are
  invoiced once through the invoicing service under the idempotency key `automation:invoice:<job id>`. A
  job with an invoice already (made by a person, or by the vendor itself) keeps it and gets no second one
  (`billed` = existing). Nothing to bill, or a refusal from the backend, is an `invoice.needs_review` event for
  a person, never a zero invoice.
- **Follow-up due.** `follow_up_days` (3 by default; 0: none) after the completion, a `follow_up.due` event.
- **A delay, where technicians invoice in the vendor's app.** `invoice_delay_minutes` (0 by default) after a
  completion the automation looks: an invoice the technician made meanwhile is the job's one (`existing`).

Each step is repeatable: the lines are chosen once and recorded before the invoice (so a repeat sends the same
request under the same key, which replays), and what billing came to, the review event and the cursor's move
past the event commit in one transaction. A crash anywhere repeats the step; the repeat changes nothing. A
transient failure (the vendor down, an uncertain write, a busy store) stops the business's pass at that
event, and the next pass tries it again: the feed is handled in order. Over a vendor, whose every step waits
on it, up to `Policy.parallel` completions are acted on at once; the cursor still never passes one that failed.

One process at a time runs them, among every replica sharing the store (a store lease); `fsm-mcp serve`
starts them. A new automation starts at the business's newest event: it acts on completions from then on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, nullcontext, suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anyio

from fsm_mcp.businesses import ServedBusiness, ServedBusinesses
from fsm_mcp.connectors.http.concurrently import first_failure
from fsm_mcp.errors import Busy, FsmError, VendorUnavailable, WriteUncertain
from fsm_mcp.events import outbox
from fsm_mcp.events.window import Page, slide
from fsm_mcp.inputs import LineItemIn
from fsm_mcp.services import invoicing
from fsm_mcp.services.actors import system_actor
from fsm_mcp.services.invoicing import InvoiceRequest
from fsm_mcp.store import Store
from fsm_mcp.store import automations as sql
from fsm_mcp.store import events as feed
from fsm_mcp.store.db import from_db
from fsm_mcp.store.leases import Lease

log = logging.getLogger("fsm_mcp")

ACTOR = system_actor("automation")
CURSOR = "completion"  # the automation's cursor in each business's feed
TRANSIENT = (VendorUnavailable, WriteUncertain, Busy)


@dataclass(frozen=True, slots=True)
class Policy:
    poll: float = 0.5  # seconds between passes
    batch: int = 200  # events read per business per pass
    unit: int = 20  # events acted on in one transaction, on the local store
    # completions acted on at once over a vendor: each step is about three requests waiting on the vendor's pace,
    # so at 10 completions a second, with 429 holds and lost answers read back, 8 at once left the next waiting
    # (event to billing begun p95 4.8 s at ServiceTitan; 2.3 s at 16)
    parallel: int = 16
    longest: float = 20.0  # seconds a business's window reads the feed in one pass over a vendor
    lease: timedelta = timedelta(seconds=30)


def invoice_key(job_id: str) -> str:
    return f"automation:invoice:{job_id}"


def _dump(lines: list[LineItemIn]) -> str:
    return json.dumps([line.model_dump(mode="json") for line in lines])


def _load(text: str | None) -> list[LineItemIn]:
    return [LineItemIn.model_validate(item) for item in json.loads(text or "[]")]


async def note_work(db: Store, tenant: str, job_id: str, lines: list[LineItemIn]) -> None:
    """The work a completion carried, to be invoiced (in the completion's transaction, on the local store)."""
    await db.awrite(sql.set_lines, tenant, job_id, _dump(lines), "completion", db.clock.now(), True)


class Automations:
    def __init__(self, served: ServedBusinesses, policy: Policy | None = None) -> None:
        self.served, self.policy = served, policy or Policy()
        self.db = next(iter(served.by_id.values())).db

    async def start(self) -> None:
        """Place each business's cursor at its newest event, where it has none yet."""
        for tenant in self.served.by_id:
            def place(conn: Any, tenant: str = tenant) -> None:
                sql.start(conn, tenant, CURSOR, feed.counter(conn, tenant))

            await self.db.awrite(place)

    async def step(self, renew: Callable[[], Awaitable[Any]] | None = None) -> int:
        """One pass over every business, side by side (each waits on its own vendor): its new events, then its
        follow-ups due. `renew` (the lease) is called a third of the lease's life at a time meanwhile. Returns
        what it acted on."""
        done = 0

        async def one(business: ServedBusiness) -> None:
            nonlocal done
            done += await self.completions(business)
            done += await self.follow_ups(business)

        async def renewing() -> None:
            while renew is not None:
                await anyio.sleep(self.policy.lease.total_seconds() / 3)
                await renew()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(renewing)
                async with anyio.create_task_group() as businesses:
                    for business in self.served.by_id.values():
                        businesses.start_soon(one, business)
                tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:  # a business's own failure, as one at a time raises it
            raise first_failure(group) from None
        return done

    async def completions(self, business: ServedBusiness) -> int:
        db, tenant = business.db, business.tenant
        seq = await db.aread(sql.cursor, tenant, CURSOR)
        if seq is None:
            await self.start()
            seq = await db.aread(sql.cursor, tenant, CURSOR) or 0
        if not business.writer.in_transaction and self.policy.parallel > 1:
            return await self._side_by_side(business, seq)
        rows = _due(business, await db.aread(feed.after, tenant, seq, self.policy.batch))
        acted, unit = 0, self.policy.unit if business.writer.in_transaction else 1
        for first in range(0, len(rows), unit):
            # On the local store `unit` events' steps share a transaction: one wait for the store's write lock
            # instead of one per event, so the automation keeps up with completions while callers write.
            async with db.atomic() if unit > 1 else nullcontext():
                done, whole = await self._events(business, rows[first:first + unit])
            acted += done
            if not whole:
                break
        return acted

    async def _events(self, business: ServedBusiness, rows: list[Any]) -> tuple[int, bool]:
        """Act on each `job.completed` among `rows` and move the cursor past them all; (acted, False) when a
        transient failure stopped it at one, to be tried again next pass."""
        db, tenant = business.db, business.tenant
        acted, passed = 0, None
        for row in rows:
            if row["type"] == "job.completed":
                if passed is not None:  # the events before this one need nothing: move past them first
                    await db.awrite(sql.advance, tenant, CURSOR, passed)
                    passed = None
                if not await self.completed(business, row):
                    return acted, False
                acted += 1
            else:
                passed = int(row["seq"])
        if passed is not None:
            await db.awrite(sql.advance, tenant, CURSOR, passed)
        return acted, True

    async def _side_by_side(self, business: ServedBusiness, seq: int) -> int:
        """Over a vendor, whose every step waits on it: up to `parallel` completions' steps at once, as a sliding
        window over the feed (`events/window.py`), for up to `longest` seconds. One after another, 1,000
        completions in 100 s at FieldPulse were invoiced a minute late; in batches, each batch waited for its
        slowest step (a 429's hold, a lost answer read back). The cursor moves to just before the first event not
        done (a step that failed transiently is tried again next pass; the steps done after it are recorded as
        billed, so their repeat only moves the cursor)."""
        db, tenant = business.db, business.tenant
        batch = self.policy.batch

        async def read(after: int | None) -> Page[int, Any]:
            rows = await db.aread(feed.after, tenant, seq if after is None else after, batch)
            due = _due(business, rows)
            return Page([(int(r["seq"]), r if r["type"] == "job.completed" else None) for r in due],
                        len(due) == batch)

        async def act(row: Any) -> bool:
            return await self.completed(business, row, advance=False)

        async def settle(at: int) -> None:
            await db.awrite(sql.advance, tenant, CURSOR, at)

        return (await slide(read, act, settle, None, self.policy.parallel, longest=self.policy.longest)).acted

    async def completed(self, business: ServedBusiness, event: Any, advance: bool = True) -> bool:
        """Bill the job of one `job.completed` and schedule its follow-up; False on a transient failure.
        `advance`: move the cursor past the event too (else the caller moves it).

        On the local store the whole step is one transaction: the invoice, its key's record, its event, what
        billing came to and the cursor's move commit together. Over a vendor the invoice is made there first,
        and a repeat replays it by its key."""
        db, job_id = business.db, str(event["subject_id"])
        try:
            async with db.atomic() if business.writer.in_transaction else nullcontext():
                state = await db.aread(sql.job, business.tenant, job_id)
                if state is not None and state["billed"] is not None:  # done before the cursor moved: a repeat
                    if advance:
                        await db.awrite(sql.advance, business.tenant, CURSOR, int(event["seq"]))
                    return True
                lines = await self._lines(business, job_id, state, json.loads(event["data"]).get("job_type"))
                if not lines:
                    await self._settle(business, event, "needs_review", None, "nothing_to_bill", advance)
                    return True
                billed = await invoicing.invoice(business, ACTOR, invoice_key(job_id),
                                                 InvoiceRequest(job_id=job_id, line_items=tuple(lines),
                                                                tax_rate=business.settings.business.tax_rate))
                outcome = "existing" if billed.already_invoiced else "invoiced"
                await self._settle(business, event, outcome, billed.invoice.invoice_id, None, advance)
                return True
        except TRANSIENT as exc:
            log.warning("automation: invoicing job %s waits for the next pass: %s", job_id, type(exc).__name__)
            return False
        except FsmError as exc:  # refused for good (not invoiceable, rejected by the vendor): a person decides
            log.warning("automation: invoicing job %s was refused (%s)", job_id, type(exc).__name__)
            await self._settle(business, event, "needs_review", None, "refused", advance)
            return True

    async def _lines(self, business: ServedBusiness, job_id: str, state: Any, job_type: str | None) -> list[LineItemIn]:
        """The lines to bill, chosen once: the completion's, else the price list's for the job type (the event's,
        else the job's read back), recorded."""
        if state is not None and state["lines"]:
            return _load(state["lines"])
        if job_type is None:  # an event recorded before events carried the type
            job_type = (await business.backend.get_job(job_id)).job_type
        priced = business.settings.business.priced(job_type)
        if not priced:
            return []
        db = business.db
        await db.awrite(sql.set_lines, business.tenant, job_id, _dump(priced), "price_list", db.clock.now(), False)
        return _load((await db.aread(sql.job, business.tenant, job_id))["lines"])

    async def _settle(self, business: ServedBusiness, event: Any, outcome: str, invoice_id: str | None,
                      why: str | None, advance: bool = True) -> None:
        db, tenant, job_id = business.db, business.tenant, str(event["subject_id"])
        data = json.loads(event["data"])
        customer_id = data.get("customer_id")
        days = business.settings.business.follow_up_days
        follow_up_at = from_db(event["at"]) + timedelta(days=days) if days > 0 else None
        now = db.clock.now()
        async with db.atomic():
            first = await db.awrite(sql.settle, tenant, job_id, outcome, invoice_id, customer_id, follow_up_at, now)
            if first and outcome == "needs_review":
                await db.awrite(outbox.insert, tenant, now, "invoice.needs_review", "job", job_id,
                                {"job_id": job_id, "customer_id": customer_id, "reason": why})
            if advance:
                await db.awrite(sql.advance, tenant, CURSOR, int(event["seq"]))

    async def follow_ups(self, business: ServedBusiness) -> int:
        db, tenant = business.db, business.tenant
        now = db.clock.now()
        acted = 0
        for row in await db.aread(sql.due_follow_ups, tenant, now, self.policy.batch):
            async with db.atomic():
                if await db.awrite(sql.followed_up, tenant, row["job_id"], now):
                    await db.awrite(outbox.insert, tenant, now, "follow_up.due", "job", row["job_id"],
                                    {"job_id": row["job_id"], "customer_id": row["customer_id"],
                                     "due_at": from_db(row["follow_up_at"]).isoformat()})
                    acted += 1
        return acted

    async def run(self, lease: Lease | None = None) -> None:
        """Pass after pass while this process holds the lease; forever (cancel to stop)."""
        lease = lease or Lease(self.db, "automations", self.policy.lease)
        try:
            while True:
                acted = 0
                try:
                    if await lease.take():
                        acted = await self.step(lease.take)
                except FsmError as exc:  # the store is busy: the next pass tries again
                    log.warning("automation pass failed: %s", exc)
                await anyio.sleep(0 if acted else self.policy.poll)  # after work, at once: more may be waiting
        finally:
            with anyio.CancelScope(shield=True), suppress(FsmError):
                await lease.release()


def _due(business: ServedBusiness, rows: list[Any]) -> list[Any]:
    """The events to act on now: those up to the first recorded less than the business's `invoice_delay_minutes`
    ago (the feed is acted on in order; the rest wait for a later pass)."""
    delay = business.settings.business.invoice_delay_minutes
    if not delay:
        return rows
    cutoff = business.db.clock.now() - timedelta(minutes=delay)
    for n, row in enumerate(rows):
        if from_db(row["at"]) > cutoff:
            return rows[:n]
    return rows


@asynccontextmanager
async def automating(served: ServedBusinesses, policy: Policy | None = None) -> AsyncIterator[Automations]:
    """The automations running in the background for the block (for `fsm-mcp serve`)."""
    automations = Automations(served, policy)
    await automations.start()
    async with anyio.create_task_group() as tg:
        tg.start_soon(automations.run)
        yield automations
        tg.cancel_scope.cancel()
