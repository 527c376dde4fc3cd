"""The invoices' rows: a job's invoices, one invoice, a new one, a customer's open balance."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from fsm_mcp.billing import Line, Totals
from fsm_mcp.errors import NotFound
from fsm_mcp.models import Invoice, LineItem
from fsm_mcp.store.db import from_db, new_id, to_db


def _from_row(row: Any) -> Invoice:
    return Invoice(
        invoice_id=row["id"], job_id=row["job_id"], customer_id=row["customer_id"],
        line_items=[LineItem(**item) for item in json.loads(row["lines"])],
        subtotal=Decimal(row["subtotal"]), discount=Decimal(row["discount"]), tax_rate=Decimal(row["tax_rate"]),
        tax=Decimal(row["tax"]), total=Decimal(row["total"]), balance=Decimal(row["balance"]), status=row["status"],
        created_at=from_db(row["created_at"]),
    )


def for_job(conn: Any, tenant: str, job_id: str) -> list[Invoice]:
    rows = conn.execute("SELECT * FROM invoices WHERE tenant_id=? AND job_id=? ORDER BY created_at, id", (tenant, job_id))
    return [_from_row(r) for r in rows]


def load(conn: Any, tenant: str, invoice_id: str) -> Invoice:
    row = conn.execute("SELECT * FROM invoices WHERE tenant_id=? AND id=?", (tenant, invoice_id)).fetchone()
    if row is None:
        raise NotFound("invoice", invoice_id, "invoice_id", "Invoices are listed on the job (get_job).")
    return _from_row(row)


def insert(conn: Any, tenant: str, job_id: str, customer_id: str, lines: list[Line], sums: Totals,
           now: datetime) -> str:
    """A new open invoice, its balance its total; its id."""
    invoice_id = new_id("inv")
    stored = [
        {"description": ln.description, "kind": ln.kind, "quantity": str(ln.quantity), "unit_price": str(ln.unit_price),
         "amount": str(ln.amount)}
        for ln in lines
    ]
    conn.execute(
        "INSERT INTO invoices (tenant_id, id, job_id, customer_id, lines, subtotal, discount, tax_rate, tax, total, "
        "balance, status, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (tenant, invoice_id, job_id, customer_id, json.dumps(stored), str(sums.subtotal), str(sums.discount),
         str(sums.tax_rate), str(sums.tax), str(sums.total), str(sums.total), "open", to_db(now)),
    )
    return invoice_id


def open_balance(conn: Any, tenant: str, customer_id: str) -> Decimal:
    rows = conn.execute(
        "SELECT balance FROM invoices WHERE tenant_id=? AND customer_id=? AND status='open'", (tenant, customer_id)
    )
    return sum((Decimal(r[0]) for r in rows), Decimal("0.00"))
