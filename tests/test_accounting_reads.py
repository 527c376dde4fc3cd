"""What a QuickBooks webhook costs in reads: the books' payments are read once each, not again on every
announcement of their invoice or payment (benchmarks/accounting_flow.py's webhook phase was spending two
thirds of its requests re-reading payments already recorded)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from fsm_mcp.connectors.local import invoices
from fsm_mcp.store import Store
from tests.accounting_rig import TENANT, books, invoiced_job

pytestmark = pytest.mark.anyio


def payment_reads(fake: Any) -> int:
    return sum(1 for e in fake.door.log if e.method == "GET" and "/payment/" in e.path)


async def test_a_payment_webhook_reads_the_payment_once_and_its_invoice_once(db: Store) -> None:
    invoice_id = invoiced_job(db, "Ann Lee", "(217) 555-0199")
    with books("quickbooks", db) as rig:
        await rig.connect()
        sink = rig.sink()
        posted = await sink.post_invoice(invoice_id)
        rig.fake.pending()
        payment = rig.pay(posted.their_id, "100.00")
        company = rig.fake.companies[rig.settings.company]
        [change] = [c for c in company.changes[rig.fake.notified[rig.settings.company]:] if c.entity == "Payment"]
        before = len(rig.fake.door.log)
        async with rig.webhooks(sink) as hooks:
            [delivery] = await rig.fake.deliver(rig.hook_url, changes=[(rig.settings.company, change)], client=hooks)
        await rig.aclose()
    assert delivery.status == 200 and change.id == payment
    reads = [(e.method, e.path.rsplit("/", 2)[-2]) for e in rig.fake.door.log[before:] if e.status == 200]
    assert sorted(reads) == [("GET", "invoice"), ("GET", "payment")]
    assert db.read(invoices.load, TENANT, invoice_id).balance == posted_total(db, invoice_id) - Decimal("100.00")


async def test_a_payment_already_recorded_is_not_read_again_when_its_invoice_is_announced_again(db: Store) -> None:
    invoice_id = invoiced_job(db, "Ann Lee", "(217) 555-0199")
    with books("quickbooks", db) as rig:
        await rig.connect()
        sink = rig.sink()
        posted = await sink.post_invoice(invoice_id)
        rig.fake.pending()
        rig.pay(posted.their_id, "100.00")
        async with rig.webhooks(sink) as hooks:
            first = await rig.deliver(hooks)  # the payment and the invoice it changed: the payment read, recorded
            once = payment_reads(rig.fake)
            rig.pay(posted.their_id, "20.00")  # a second payment: only it is new
            again = await rig.deliver(hooks, repeat=3)
        await rig.aclose()
    assert all(d.status == 200 for d in first + again)
    assert once == 1
    assert payment_reads(rig.fake) == 2  # the second payment, once, however often it and its invoice are announced
    invoice = db.read(invoices.load, TENANT, invoice_id)
    assert invoice.balance == invoice.total - Decimal("120.00")


def posted_total(db: Store, invoice_id: str) -> Decimal:
    return db.read(invoices.load, TENANT, invoice_id).total
