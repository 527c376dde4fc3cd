"""Invoicing on FieldPulse: one invoice per job, posted with its lines, discount and tax rate.

FieldPulse takes no idempotency key, so the job's invoices are read first: one already
there is the answer (unless the agent asks for an additional one), and after a lost answer
the read-back counts them before anything is sent again.

What else billing needs of the job (that it is completed, and its customer) is what fsm-mcp last knew of it,
when that is a completion (`vendor_jobs.last_known`: the completion the automation acts on, or one a tool or
the poll recorded); otherwise the job is read, without its comments (a completed job's status needs none).
So the automation's invoice costs FieldPulse two requests, the invoices' read and the POST.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from fsm_mcp.billing import Line, cents, totals
from fsm_mcp.connectors.fieldpulse import mapping
from fsm_mcp.connectors.fieldpulse.api import FieldPulseApi, where
from fsm_mcp.connectors.fieldpulse.jobs import Jobs
from fsm_mcp.events.vendor_jobs import last_known
from fsm_mcp.inputs import LineItemIn
from fsm_mcp.models import Invoice, JobStatus, LineItem
from fsm_mcp.results import Billed
from fsm_mcp.scheduling import check_invoiceable

Json = dict[str, Any]


async def bill(api: FieldPulseApi, jobs: Jobs, job_id: str, lines: list[LineItemIn], tax_rate: Decimal,
               discount: Decimal, allow_additional: bool) -> Billed:
    customer_id = await _completed_for(jobs, job_id)
    priced = [Line(x.description, x.kind, x.quantity, x.unit_price) for x in lines]
    sums = totals(priced, tax_rate, discount)  # refuses bad lines before anything is sent
    kinds = {x.description: x.kind for x in lines}
    before = await of_job(api, job_id)
    if before and not allow_additional:
        return Billed(invoice=to_model(before[-1], tax_rate, kinds), already_invoiced=True)
    body = {
        "customer_id": int(customer_id), "job_id": int(job_id),
        "line_items": [{"name": x.description, "description": x.description, "quantity": mapping.money_out(x.quantity),
                        "unit_price": mapping.money_out(x.unit_price)} for x in priced],
        "discount": mapping.money_out(sums.discount), "tax_rate": mapping.money_out(tax_rate),
    }

    async def posted() -> Json | None:
        now = await of_job(api, job_id)
        return now[-1] if len(now) > len(before) else None

    made = await api.write("POST", "/invoices", body, check=posted, what="the invoice")
    return Billed(invoice=to_model(made, tax_rate, kinds), already_invoiced=False)


async def _completed_for(jobs: Jobs, job_id: str) -> str:
    """The customer of the job, which must be completed: as last known here, else as FieldPulse says."""
    known = await last_known(jobs.db, jobs.business.tenant_id, job_id) if job_id.isdigit() else None
    if known is not None and known.get("status") == JobStatus.completed.value and str(known.get("customer_id") or "").isdigit():
        return str(known["customer_id"])
    job = (await jobs.views([await jobs.raw(job_id)], comments=False))[0]
    check_invoiceable(job)
    return job.customer_id


async def of_job(api: FieldPulseApi, job_id: str) -> list[Json]:
    """The job's invoices, oldest first."""
    found = await api.all("/invoices", {"filter": where(("job_id", "=", job_id))})
    return sorted(found, key=lambda i: int(i["id"]))


def to_model(invoice: Json, tax_rate: Decimal, kinds: Mapping[str, str] | None = None) -> Invoice:
    lines = [
        LineItem(description=item.get("description") or item.get("name") or "",
                 kind=(kinds or {}).get(item.get("description") or item.get("name") or "", "labor"),  # type: ignore[arg-type]
                 quantity=mapping.money(item.get("quantity")), unit_price=mapping.money(item.get("unit_price")),
                 amount=cents(mapping.money(item.get("total"))))
        for item in invoice.get("line_items") or []
    ]
    total, balance = mapping.money(invoice.get("total")), mapping.money(invoice.get("balance_due"))
    created = mapping.when(invoice.get("created_at"))
    assert created is not None
    return Invoice(
        invoice_id=str(invoice["id"]), job_id=str(invoice.get("job_id") or ""), customer_id=str(invoice.get("customer_id") or ""),
        line_items=lines, subtotal=cents(mapping.money(invoice.get("subtotal"))), discount=cents(mapping.money(invoice.get("discount"))),
        tax_rate=mapping.money(invoice.get("tax_rate")) if invoice.get("tax_rate") not in (None, "") else tax_rate,
        tax=cents(mapping.money(invoice.get("tax"))), total=cents(total), balance=cents(balance),
        status="paid" if total > 0 and balance == 0 else "open", created_at=created,
    )
