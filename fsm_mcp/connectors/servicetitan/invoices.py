"""Invoicing on ServiceTitan. ServiceTitan opens each job's invoice itself (a POST would make
an adjustment invoice), so create_invoice finds that invoice by job and fills it: one
item per line, the discount as a negative item, and the tax on the invoice.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from fsm_mcp.billing import Line, cents, totals
from fsm_mcp.connectors.servicetitan import mapping
from fsm_mcp.connectors.servicetitan.api import ServiceTitanApi
from fsm_mcp.connectors.servicetitan.jobs import Jobs
from fsm_mcp.errors import InvalidTransition
from fsm_mcp.events.vendor_jobs import last_known
from fsm_mcp.inputs import LineItemIn
from fsm_mcp.models import Invoice, JobStatus, LineItem
from fsm_mcp.results import Billed
from fsm_mcp.scheduling import check_invoiceable

Json = dict[str, Any]
DISCOUNT = "Discount"
KINDS = {"Material": "material", "Equipment": "material", "Service": "service"}


async def bill(api: ServiceTitanApi, jobs: Jobs, job_id: str, lines: list[LineItemIn], tax_rate: Decimal,
               discount: Decimal, allow_additional: bool) -> Billed:
    await _completed(jobs, job_id)
    priced = [Line(x.description, x.kind, x.quantity, x.unit_price) for x in lines]
    sums = totals(priced, tax_rate, discount)  # refuses bad lines before anything is sent
    invoice = await _invoice(api, job_id)
    kinds = {x.description: x.kind for x in lines}
    items: list[Json] = [{"description": x.description, "quantity": mapping.number(x.quantity),
                          "unitPrice": mapping.number(x.unit_price)} for x in priced]
    if sums.discount:
        items.append({"description": DISCOUNT, "quantity": 1, "unitPrice": mapping.number(-sums.discount)})
    tax = cents(mapping.money(invoice.get("salesTax")) + sums.tax)
    present = invoice.get("items") or []
    if present and not allow_additional:
        missing = _still_to_add(present, items)
        if missing is None:  # it holds lines this call does not: billed already, by another call or in the office
            return Billed(invoice=to_model(invoice, job_id, tax_rate), already_invoiced=True)
        # Every line on it is one of this call's: a call cut off part-way (a crash, a lost answer) is finished,
        # never repeated and never left short. The tax is set after the last line, on an invoice ServiceTitan
        # opened empty, so it is this call's tax alone.
        tax = sums.tax
        if not missing and mapping.money(invoice.get("salesTax")) == tax:
            return Billed(invoice=to_model(invoice, job_id, tax_rate, kinds), already_invoiced=True)
        items = missing
    for item in items:
        await _add(api, invoice, item)
    if sums.tax and mapping.money(invoice.get("salesTax")) != tax:
        invoice_id = invoice["id"]

        async def taxed() -> Json | None:
            return {"ok": True} if mapping.money((await _invoice(api, job_id)).get("salesTax")) == tax else None

        await api.write("PATCH", "accounting", f"invoices/{invoice_id}", {"tax": mapping.number(tax)}, check=taxed,
                        what="the invoice's tax")
    return Billed(invoice=to_model(await _invoice(api, job_id), job_id, tax_rate, kinds), already_invoiced=False)


def _still_to_add(present: list[Json], items: list[Json]) -> list[Json] | None:
    """The items of `items` not yet on the invoice, when everything on it is one of them; None when it holds
    something else."""
    def key(description: Any, quantity: Any, price: Any) -> tuple[str, Decimal, Decimal]:
        return str(description or ""), mapping.money(quantity), mapping.money(price)

    left = [key(i.get("description"), i.get("quantity"), i.get("price")) for i in present]
    missing = []
    for item in items:
        wanted = key(item["description"], item["quantity"], item["unitPrice"])
        if wanted in left:
            left.remove(wanted)
        else:
            missing.append(item)
    return None if left else missing


async def _completed(jobs: Jobs, job_id: str) -> None:
    """Refuses a job not completed: as last known here (the completion the automation acts on, or one a tool or
    the poll recorded), else as ServiceTitan says. The read of a job is four requests (the job, its appointments,
    their technicians and its notes), most of a completion's cost at the vendor's rate."""
    known = await last_known(jobs.db, jobs.business.tenant_id, job_id) if job_id.isdigit() else None
    if known is None or known.get("status") != JobStatus.completed.value:
        check_invoiceable(await jobs.get(job_id))


async def _invoice(api: ServiceTitanApi, job_id: str) -> Json:
    found = await api.all("accounting", "invoices", {"jobId": job_id})
    if not found:
        raise InvalidTransition(f"job_id: ServiceTitan has not opened an invoice for job {job_id}; it does so when the job "
                                "is booked. Check the job in ServiceTitan.")
    return found[0]


async def _add(api: ServiceTitanApi, invoice: Json, item: Json) -> None:
    """One item; after a lost answer the invoice is read back and the item counted, so it is never added twice."""
    def same(i: Json) -> bool:
        return i.get("description") == item["description"] and mapping.money(i.get("quantity")) == Decimal(str(item["quantity"])) \
            and mapping.money(i.get("price")) == Decimal(str(item["unitPrice"]))

    before = sum(same(i) for i in invoice.get("items") or [])

    async def added() -> Json | None:
        now = await api.all("accounting", "invoices", {"ids": str(invoice["id"])})
        return {"ok": True} if now and sum(same(i) for i in now[0].get("items") or []) > before else None

    await api.write("PATCH", "accounting", f"invoices/{invoice['id']}/items", item, check=added, what="an invoice line")
    invoice.setdefault("items", []).append({**item, "price": str(item["unitPrice"])})


def to_model(invoice: Json, job_id: str, tax_rate: Decimal, kinds: Mapping[str, str] | None = None) -> Invoice:
    lines, discount = [], Decimal("0.00")
    for item in sorted(invoice.get("items") or [], key=lambda i: i.get("order", 0)):
        amount = mapping.money(item.get("total"))
        if item.get("description") == DISCOUNT and amount < 0:
            discount += -amount
            continue
        description = item.get("description") or item.get("skuName") or ""
        kind = (kinds or {}).get(description) or KINDS.get(item.get("type", ""), "labor")
        lines.append(LineItem(description=description, kind=kind, quantity=mapping.money(item.get("quantity")),  # type: ignore[arg-type]
                              unit_price=mapping.money(item.get("price")), amount=amount))
    subtotal = sum((x.amount for x in lines), Decimal("0.00"))
    balance, total = mapping.money(invoice.get("balance")), mapping.money(invoice.get("total"))
    created = mapping.when(invoice.get("invoiceDate") or invoice.get("modifiedOn"))
    assert created is not None
    return Invoice(
        invoice_id=str(invoice["id"]), job_id=job_id, customer_id=str((invoice.get("customer") or {}).get("id", "")),
        line_items=lines, subtotal=subtotal, discount=cents(discount), tax_rate=tax_rate,
        tax=mapping.money(invoice.get("salesTax")), total=total, balance=balance,
        status="paid" if total > 0 and balance == 0 else "open", created_at=created,
    )
