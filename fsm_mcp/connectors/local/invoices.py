"""Invoices for completed jobs: one per job unless another is asked for."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from fsm_mcp.billing import Line, totals
from fsm_mcp.inputs import LineItemIn
from fsm_mcp.results import Billed
from fsm_mcp.scheduling import check_invoiceable
from fsm_mcp.store import invoices as rows
from fsm_mcp.store import jobs

load = rows.load  # one invoice, by its id (the accounting sink reads it here)


def create(
    conn: Any, tenant: str, job_id: str, items: list[LineItemIn], tax_rate: Decimal, discount: Decimal,
    now: datetime, allow_additional: bool = False,
) -> Billed:
    job = jobs.load_job(conn, tenant, job_id)
    check_invoiceable(job)
    for existing in rows.for_job(conn, tenant, job_id):
        if existing.status != "void" and not allow_additional:
            return Billed(invoice=existing, already_invoiced=True)
    lines = [Line(i.description, i.kind, i.quantity, i.unit_price) for i in items]
    invoice_id = rows.insert(conn, tenant, job_id, job.customer_id, lines, totals(lines, tax_rate, discount), now)
    return Billed(invoice=rows.load(conn, tenant, invoice_id), already_invoiced=False)
