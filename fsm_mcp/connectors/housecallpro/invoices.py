"""Invoicing on Housecall Pro, whose API only reads invoices. The closest correct thing it
allows is what the business does in the app before invoicing: put the work on the job.
create_invoice adds the lines (and the discount, as a fixed-discount line) to the job's
line items, from which Housecall Pro makes the job's invoice, and answers with the invoice
those lines make, numbered with the job's invoice number. The invoice is sent from the
Housecall Pro app, which taxes the taxable lines at the company's own rate.

A job Housecall Pro has already invoiced is answered with that invoice; one whose lines are
already on it is answered with them (`already_invoiced`), unless more are asked for. The
lines go in one bulk request (the spec asks for that over one line at a time); after a lost
answer the job's lines are read back and counted, so they are never added twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fsm_mcp.billing import Line, cents, totals
from fsm_mcp.connectors.housecallpro import mapping
from fsm_mcp.connectors.housecallpro.api import HousecallProApi
from fsm_mcp.connectors.housecallpro.jobs import Jobs
from fsm_mcp.errors import InvalidInput
from fsm_mcp.inputs import LineItemIn
from fsm_mcp.models import Invoice, LineItem
from fsm_mcp.results import Billed
from fsm_mcp.scheduling import check_invoiceable

Json = dict[str, Any]
KIND_IN = {"materials": "material", "labor": "labor"}


async def bill(api: HousecallProApi, jobs: Jobs, job_id: str, lines: list[LineItemIn], tax_rate: Decimal,
               discount: Decimal, allow_additional: bool, now: datetime) -> Billed:
    raw = await jobs.raw(job_id)
    check_invoiceable(jobs.view(raw))
    priced = [Line(x.description, x.kind, x.quantity, x.unit_price) for x in lines]
    sums = totals(priced, tax_rate, discount)  # refuses bad lines before anything is sent
    items = [mapping.line_out(x.description, x.kind, x.quantity, x.unit_price, tax_rate > 0, n) for n, x in enumerate(priced)]
    if sums.discount:
        items.append(mapping.discount_out(sums.discount))
    kinds = {x.description: x.kind for x in lines}
    issued = (await api.get(f"/jobs/{job_id}/invoices")).get("invoices") or []
    if issued:
        if not allow_additional:
            return Billed(invoice=to_model(issued[-1], raw, tax_rate, now, kinds), already_invoiced=True)
        raise InvalidInput("allow_additional", f"Housecall Pro has invoiced job {job_id} already, and its API cannot make "
                                               "another invoice; make the additional one in the Housecall Pro app")
    before = await of_job(api, job_id)
    if before and not allow_additional:
        return Billed(invoice=from_items(raw, before, tax_rate, now, kinds), already_invoiced=True)

    async def added() -> list[Json] | None:
        after = await of_job(api, job_id)
        return after if len(after) >= len(before) + len(items) else None

    answer = await api.write("PUT", f"/jobs/{job_id}/line_items/bulk_update",
                             {"line_items": items, "append_line_items": True}, check=added, what="the job's invoice lines")
    after = answer["data"] if isinstance(answer, dict) and "data" in answer else answer
    return Billed(invoice=from_items(raw, after, tax_rate, now, kinds), already_invoiced=False)


async def of_job(api: HousecallProApi, job_id: str) -> list[Json]:
    return list((await api.get(f"/jobs/{job_id}/line_items")).get("data") or [])


def _line(name: str, kind: str, quantity: Decimal, unit_price: Decimal, amount: Decimal) -> LineItem:
    return LineItem(description=name, kind=kind, quantity=quantity, unit_price=unit_price, amount=amount)  # type: ignore[arg-type]


def from_items(job: Json, items: list[Json], tax_rate: Decimal, now: datetime, kinds: Mapping[str, str]) -> Invoice:
    """The invoice the job's line items make, taxed at `tax_rate` on the taxable lines less the discount."""
    lines, off, taxable = [], Decimal("0.00"), Decimal("0.00")
    for item in items:
        amount = mapping.money(item.get("amount"))
        if "discount" in str(item.get("kind")):
            off += amount
            continue
        name = str(item.get("name") or item.get("description") or "")
        lines.append(_line(name, kinds.get(name) or KIND_IN.get(str(item.get("kind")), "labor"),
                           Decimal(str(item.get("quantity") or 0)), mapping.money(item.get("unit_price")), amount))
        taxable += amount if item.get("taxable", True) else Decimal("0.00")
    subtotal = sum((x.amount for x in lines), Decimal("0.00"))
    tax = cents(max(Decimal("0.00"), taxable - off) * tax_rate)
    total = cents(subtotal - off + tax)
    return Invoice(invoice_id=str(job.get("invoice_number") or job["id"]), job_id=str(job["id"]),
                   customer_id=mapping.customer_of(job), line_items=lines, subtotal=subtotal, discount=cents(off),
                   tax_rate=tax_rate, tax=tax, total=total, balance=total, status="open", created_at=now)


def to_model(invoice: Json, job: Json, tax_rate: Decimal, now: datetime, kinds: Mapping[str, str]) -> Invoice:
    """An invoice Housecall Pro issued (JobInvoice): amounts in cents, quantities in hundredths."""
    lines = [_line(name := str(i.get("name") or i.get("description") or ""),
                   kinds.get(name) or KIND_IN.get(str(i.get("type")), "labor"),
                   Decimal(int(i.get("qty_in_hundredths") or 0)) / 100, mapping.money(i.get("unit_price")),
                   mapping.money(i.get("amount")))
             for i in invoice.get("items") or []]
    off = sum((mapping.money(d.get("amount")) for d in invoice.get("discounts") or []), Decimal("0.00"))
    tax = sum((mapping.money(t.get("amount")) for t in invoice.get("taxes") or []), Decimal("0.00"))
    subtotal = mapping.money(invoice.get("subtotal")) if invoice.get("subtotal") is not None else \
        sum((x.amount for x in lines), Decimal("0.00"))
    base = subtotal - off
    created = next((at for f in ("invoice_date", "sent_at", "service_date")
                    if (at := mapping.when(invoice.get(f), now.tzinfo or UTC))), now)
    return Invoice(
        invoice_id=str(invoice.get("invoice_number") or invoice["id"]), job_id=str(job["id"]),
        customer_id=mapping.customer_of(job), line_items=lines, subtotal=subtotal, discount=off,
        tax_rate=(tax / base).quantize(Decimal("0.0001")) if base > 0 and tax else tax_rate, tax=tax,
        total=mapping.money(invoice.get("amount")), balance=mapping.money(invoice.get("due_amount")),
        status=mapping.invoice_state(invoice.get("status")), created_at=created,  # type: ignore[arg-type]
    )
