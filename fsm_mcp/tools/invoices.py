"""Invoicing completed work."""

from decimal import Decimal
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

from fsm_mcp.access.callers import needs
from fsm_mcp.inputs import LineItemIn
from fsm_mcp.models import Invoice
from fsm_mcp.store.idempotency import Attempt
from fsm_mcp.tools._kit import WRITE, IdempotencyKey, actor, agent_errors, app


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
        the_app = app(ctx)
        business = the_app.backend.business

        async def write(_: Attempt) -> CreatedInvoice:
            billed = await the_app.backend.create_invoice(job_id, line_items, tax_rate, discount, allow_additional)
            return CreatedInvoice(**billed.invoice.model_dump(), already_invoiced=billed.already_invoiced)

        arguments = {
            "job_id": job_id, "line_items": [i.model_dump(mode="json") for i in line_items], "tax_rate": str(tax_rate),
            "discount": str(discount), "allow_additional": allow_additional,
        }
        return await the_app.writer.run(
            tenant=business.tenant_id, actor=actor(ctx), tool="create_invoice", key=idempotency_key,
            arguments=arguments, result_type=CreatedInvoice, result_id=lambda r: r.invoice_id, write=write,
        )
