"""Invoicing a completed job."""

from __future__ import annotations

from decimal import Decimal

from fsm_mcp.businesses import ServedBusiness
from fsm_mcp.events import changes
from fsm_mcp.inputs import LineItemIn
from fsm_mcp.results import Billed
from fsm_mcp.services.requests import Request
from fsm_mcp.store.idempotency import Attempt

OPERATION = "create_invoice"


class InvoiceRequest(Request):
    job_id: str
    line_items: tuple[LineItemIn, ...]
    tax_rate: Decimal = Decimal("0")  # a fraction: 0.0825 for 8.25 %
    discount: Decimal = Decimal("0")  # money taken off before tax
    allow_additional: bool = False  # another invoice for a job that already has one


async def invoice(business: ServedBusiness, actor: str, key: str | None, request: InvoiceRequest) -> Billed:
    """A job already invoiced answers with that invoice (already_invoiced) unless allow_additional."""

    async def write(attempt: Attempt) -> Billed:
        billed = await business.backend.create_invoice(request.job_id, list(request.line_items), request.tax_rate,
                                                       request.discount, request.allow_additional)
        await changes.invoice_created(business.db, business.tenant, billed, attempt.resumed)
        return billed

    return await business.writer.run(
        tenant=business.tenant, actor=actor, tool=OPERATION, key=key, request=request, result_type=Billed,
        result_id=lambda b: b.invoice.invoice_id, write=write,
    )
