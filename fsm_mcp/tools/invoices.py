"""Invoicing completed work."""

from decimal import Decimal
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

from fsm_mcp.access.callers import needs
from fsm_mcp.inputs import LineItemIn
from fsm_mcp.models import Invoice
from fsm_mcp.services import invoicing
from fsm_mcp.services.invoicing import InvoiceRequest
from fsm_mcp.tools._kit import WRITE, IdempotencyKey, actor, agent_errors, business


class CreatedInvoice(Invoice):
    already_invoiced: bool = Field(
        description="True when the job already had an invoice, which is returned instead of a second one"
    )


def register(mcp: MCPServer) -> None:
    @mcp.tool(annotations=WRITE, meta=needs("billing:write"))
    @agent_errors
    async def create_invoice(
        ctx: Context,
        job_id: Annotated[str, Field(min_length=1, max_length=64)],
        line_items: Annotated[list[LineItemIn], Field(min_length=1, max_length=200, description="What was done and supplied")],
        idempotency_key: IdempotencyKey,
        tax_rate: Annotated[Decimal, Field(ge=0, le=Decimal("0.30"), description="A fraction: 0.0825 for 8.25 %")] = Decimal("0"),
        discount: Annotated[Decimal, Field(ge=0, le=1_000_000, description="An amount of money taken off before tax")] = Decimal("0"),
        allow_additional: Annotated[bool, Field(description="Issue another invoice for a job that already has one")] = False,
    ) -> CreatedInvoice:
        """Invoice a completed job. Amounts are exact decimals rounded half-up to cents; tax is charged on the
        subtotal less the discount. A job already invoiced returns that invoice with already_invoiced=true, so a
        retry never bills twice; pass allow_additional=true for a genuine second invoice."""
        request = InvoiceRequest(job_id=job_id, line_items=tuple(line_items), tax_rate=tax_rate, discount=discount,
                                 allow_additional=allow_additional)
        billed = await invoicing.invoice(business(ctx), actor(ctx), idempotency_key, request)
        return CreatedInvoice(**billed.invoice.model_dump(), already_invoiced=billed.already_invoiced)
