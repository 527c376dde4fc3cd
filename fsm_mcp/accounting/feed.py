"""The sink on the event spine: `invoice.created` from the outbox posts the invoice to the books, and each
payment seen in the books for the first time goes out as `payment.received`, in the same transaction as
its application to our invoice.

One worker at a time per business and provider reads the outbox (a store lease), from its own cursor
(`accounting_cursors`, name `outbox`), advanced past a page of events once every invoice in it is posted.
A failure (the books down, throttling past the budget) stops the round with the cursor before that page;
the next round posts the page again. Posting
is idempotent (links, the vendors' keys, read-backs), so an event done twice after a crash does nothing
more.
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
from fsm_mcp.store import accounting as sql
from fsm_mcp.store.leases import Lease

log = logging.getLogger("fsm_mcp")


def announce(sink: Sink) -> None:
    """`payment.received` on the outbox for each payment the sink sees first (inside its transaction)."""

    async def received(invoice_id: str, payment: str, amount: Decimal) -> None:
        await outbox.record(sink.db, sink.tenant, "payment.received", "payment", f"{sink.provider}:{payment}",
                            {"invoice_id": invoice_id, "amount": str(amount), "provider": sink.provider})

    sink.on_payment = received


async def together(sink: Sink, invoice_ids: list[str], at_once: int) -> None:
    """Post these invoices, `at_once` at a time (the company's lane paces them); the first failure is raised."""
    slots = anyio.CapacityLimiter(at_once)
    failures: list[BaseException] = []

    async def one(invoice_id: str) -> None:
        async with slots:
            try:
                await sink.post_invoice(invoice_id)
            except FsmError as exc:
                failures.append(exc)

    async with anyio.create_task_group() as tg:
        for invoice_id in invoice_ids:
            tg.start_soon(one, invoice_id)
    if failures:
        raise failures[0]


async def drain(sink: Sink, limit: int = 100, at_once: int = 8) -> int:
    """Post every invoice created since this sink's cursor, a page at a time, several at once; the number posted
    (or found posted already) this round."""
    lease = Lease(sink.db, f"accounting:{sink.tenant}:{sink.provider}:outbox", sink.lease)
    if not await lease.take():
        return 0
    posted = 0
    try:
        async with renewing(lease):
            while True:
                cursor = await sink.db.aread(sql.get_cursor, sink.tenant, sink.provider, "outbox")
                try:
                    page = await outbox.read(sink.db, sink.tenant, cursor, limit)
                except InvalidInput:  # the cursor's event was pruned: start again (posting twice does nothing)
                    page = await outbox.read(sink.db, sink.tenant, None, limit)
                wanted = [e.subject_id for e in page.events if e.type == "invoice.created"]
                await together(sink, wanted, at_once)  # raises (the cursor unmoved) if any failed: retried next round
                posted += len(wanted)
                if page.events:
                    await sink.db.awrite(sql.set_cursor, sink.tenant, sink.provider, "outbox", page.events[-1].id)
                if not page.more:
                    return posted
    finally:
        with anyio.CancelScope(shield=True):
            await lease.release()


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
