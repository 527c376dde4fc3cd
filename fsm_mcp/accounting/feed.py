"""The sink on the event spine: `invoice.created` from the outbox posts the invoice to the books, and each
payment seen in the books for the first time goes out as `payment.received`, in the same transaction as
its application to our invoice.

One worker at a time per business and provider reads the outbox (a store lease), from its own cursor
(`accounting_cursors`, name `outbox`), and posts its invoices as a sliding window: up to the provider's
concurrency (QuickBooks 10, Xero 5) in flight, the next starting as soon as any finishes, so that one waiting
out a 429 hold delays no other. The cursor stands just before the first invoice not yet done. A failure (the
books down, throttling past the budget) stops new starts and the round, the cursor before the invoice that
failed; the next round posts it and whatever after it was not done. Posting is idempotent (links, the
vendors' keys, read-backs), so an invoice done twice after a crash does nothing more.
"""

from __future__ import annotations

import logging
import traceback
from decimal import Decimal

import anyio

from fsm_mcp.accounting.http import DayLimitReached
from fsm_mcp.accounting.sink import Sink, renewing
from fsm_mcp.errors import FsmError, InvalidInput
from fsm_mcp.events import outbox
from fsm_mcp.events.window import Page, slide
from fsm_mcp.store import accounting as sql
from fsm_mcp.store.leases import Lease

log = logging.getLogger("fsm_mcp")


def announce(sink: Sink) -> None:
    """`payment.received` on the outbox for each payment the sink sees first (inside its transaction)."""

    async def received(invoice_id: str, payment: str, amount: Decimal) -> None:
        await outbox.record(sink.db, sink.tenant, "payment.received", "payment", f"{sink.provider}:{payment}",
                            {"invoice_id": invoice_id, "amount": str(amount), "provider": sink.provider})

    sink.on_payment = received


async def drain(sink: Sink, limit: int = 100, at_once: int | None = None, poll: float = 0.1,
                longest: float = 60.0) -> int:
    """Post every invoice created since this sink's cursor, `at_once` at a time (by default the provider's
    published concurrency, `sink.at_once`) as a sliding window: a new invoice starts as soon as any finishes, so
    one waiting out a hold keeps only its own slot, and while any is under way the outbox is read again every
    `poll` seconds, so one created meanwhile starts at once. The cursor moves to just before the first invoice
    not done yet. The first failure stops new starts; those already started finish; it is raised. The round ends
    when nothing is left to post, or (those under way finished) after `longest` seconds of reading, so that the
    worker's other work is not starved; the number posted (or found posted already) in it."""
    lease = Lease(sink.db, f"accounting:{sink.tenant}:{sink.provider}:outbox", sink.lease)
    if not await lease.take():
        return 0
    try:
        async with renewing(lease):
            return await _window(sink, limit, max(1, at_once or sink.at_once), poll, longest)
    finally:
        with anyio.CancelScope(shield=True):
            await lease.release()


async def _window(sink: Sink, limit: int, at_once: int, poll: float, longest: float) -> int:
    """The outbox's `invoice.created` events posted through the window (`events/window.py`); the number posted."""

    async def read(after: str | None) -> Page[str, str]:
        try:
            page = await outbox.read(sink.db, sink.tenant, after, limit)
        except InvalidInput:  # the cursor's event was pruned: start again (posting twice does nothing)
            page = await outbox.read(sink.db, sink.tenant, None, limit)
        return Page([(e.id, e.subject_id if e.type == "invoice.created" else None) for e in page.events], page.more)

    async def post(invoice_id: str) -> bool:
        await sink.post_invoice(invoice_id)
        return True

    async def settle(event_id: str) -> None:
        await sink.db.awrite(sql.set_cursor, sink.tenant, sink.provider, "outbox", event_id)

    start = await sink.db.aread(sql.get_cursor, sink.tenant, sink.provider, "outbox")
    slid = await slide(read, post, settle, start, at_once, poll=poll, longest=longest, ahead=max(limit, 10 * at_once))
    return slid.acted


async def run(sink: Sink, interval: float = 2.0, catch_up_every: float = 900.0) -> None:
    """Drain the outbox every `interval` seconds and catch up with the books every `catch_up_every`, forever, in
    one replica at a time (a store lease of the sink's `lease`, renewed while held: a replica killed hands the
    work on after that long)."""
    announce(sink)
    worker = Lease(sink.db, f"accounting:{sink.tenant}:{sink.provider}:worker", sink.lease)
    since_catch_up = catch_up_every  # catch up at start: changes made while we were down
    try:
        while True:
            try:
                if await worker.take():
                    async with renewing(worker):
                        await drain(sink)
                        if since_catch_up >= catch_up_every:
                            await sink.catch_up()
                            since_catch_up = 0.0
            except DayLimitReached as exc:  # nothing can go before the day's window moves on
                log.warning("accounting (%s): the day's requests are used up; waiting %.0f s", sink.provider,
                            exc.seconds)
                await anyio.sleep(max(0.0, min(exc.seconds, 600.0) - interval))
            except FsmError as exc:
                log.warning("accounting (%s): %s; trying again shortly", sink.provider, type(exc).__name__)
            except Exception as exc:  # a bug must not end the server's lifespan; its message may quote a record
                log.error("accounting (%s): %s at %s; trying again shortly", sink.provider, type(exc).__name__,
                          " < ".join(f"{f.name}:{f.lineno}" for f in traceback.extract_tb(exc.__traceback__)[-4:]))
            await anyio.sleep(interval)
            since_catch_up += interval
    finally:
        with anyio.CancelScope(shield=True):
            await worker.release()
