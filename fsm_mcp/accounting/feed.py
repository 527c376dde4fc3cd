"""The sink on the event spine: `invoice.created` from the outbox posts the invoice to the books, and each
payment seen in the books for the first time goes out as `payment.received`, in the same transaction as
its application to our invoice.

One worker at a time per business and provider reads the outbox (a store lease), from its own cursor
(`accounting_cursors`, name `outbox`), advanced past each event once it is done. A failure (the books
down, throttling past the budget) stops the round at that event; the next round starts there. Posting
is idempotent (links, the vendors' keys, read-backs), so an event done twice after a crash does nothing
more.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

import anyio

from fsm_mcp.accounting.sink import Sink
from fsm_mcp.errors import FsmError, InvalidInput
from fsm_mcp.events import outbox
from fsm_mcp.store import accounting as sql
from fsm_mcp.store.leases import Lease

log = logging.getLogger("fsm_mcp")
LEASE = timedelta(minutes=2)


def announce(sink: Sink) -> None:
    """`payment.received` on the outbox for each payment the sink sees first (inside its transaction)."""

    async def received(invoice_id: str, payment: str, amount: Decimal) -> None:
        await outbox.record(sink.db, sink.tenant, "payment.received", "payment", f"{sink.provider}:{payment}",
                            {"invoice_id": invoice_id, "amount": str(amount), "provider": sink.provider})

    sink.on_payment = received


async def drain(sink: Sink, limit: int = 100) -> int:
    """Post every invoice created since this sink's cursor; the number posted this round."""
    lease = Lease(sink.db, f"accounting:{sink.tenant}:{sink.provider}:outbox", LEASE)
    if not await lease.take():
        return 0
    posted = 0
    try:
        while True:
            cursor = await sink.db.aread(sql.get_cursor, sink.tenant, sink.provider, "outbox")
            try:
                page = await outbox.read(sink.db, sink.tenant, cursor, limit)
            except InvalidInput:  # the cursor's event was pruned: start again (posting twice does nothing)
                page = await outbox.read(sink.db, sink.tenant, None, limit)
            for event in page.events:
                if event.type == "invoice.created":
                    await sink.post_invoice(event.subject_id)
                    posted += 1
                await sink.db.awrite(sql.set_cursor, sink.tenant, sink.provider, "outbox", event.id)
            if not page.more:
                return posted
            await lease.take()
    finally:
        with anyio.CancelScope(shield=True):
            await lease.release()


async def run(sink: Sink, interval: float = 2.0, catch_up_every: float = 900.0) -> None:
    """Drain the outbox every `interval` seconds and catch up with the books every `catch_up_every`; forever."""
    announce(sink)
    since_catch_up = catch_up_every  # catch up at start: changes made while we were down
    while True:
        try:
            await drain(sink)
            if since_catch_up >= catch_up_every:
                await sink.catch_up()
                since_catch_up = 0.0
        except FsmError as exc:
            log.warning("accounting (%s): %s; trying again shortly", sink.provider, type(exc).__name__)
        await anyio.sleep(interval)
        since_catch_up += interval
