"""Money on a job (a mixin of `Company`): line items in cents, and the invoices the business issues from
a job in the app. The API only reads invoices."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from tests.fakes.housecallpro_lists import Query, Refused, invalid, not_found, parse_time, stamp

KINDS = ("materials", "labor", "fixed gratuity", "fixed discount", "percent discount")
INVOICE_STATUSES = ("open", "pending_payment", "paid", "voided", "uncollectible", "canceled")


class MoneyRules:
    line_items: dict[str, list[dict[str, Any]]]
    appointments: dict[str, list[dict[str, Any]]]
    invoices: dict[str, dict[str, Any]]
    now: Callable[[], datetime]
    new_id: Any
    _job: Any
    touch: Any

    # ----- line items -----
    def _line_item(self, body: Any, field: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise invalid(field, "must be a list of line items")
        if not isinstance(body.get("name"), str) or not body["name"]:
            raise invalid("name", "is required")
        unit_price, unit_cost = (self._cents(body.get(f, 0), f) for f in ("unit_price", "unit_cost"))
        try:
            quantity = Decimal(str(body.get("quantity", 1)))
        except InvalidOperation:
            raise invalid("quantity", "must be a number") from None
        if isinstance(body.get("quantity"), bool) or quantity != quantity.quantize(Decimal("0.01")) or quantity < 0:
            raise invalid("quantity", "must be a number with at most two decimal places")
        kind = body.get("kind", "labor")
        if kind not in KINDS:
            raise invalid("kind", f"must be one of {', '.join(KINDS)}")
        taxable = body.get("taxable", True)
        if not isinstance(taxable, bool):
            raise invalid("taxable", "must be true or false")
        return {"name": body["name"], "description": body.get("description") or "", "unit_price": unit_price,
                "unit_cost": unit_cost, "unit_of_measure": "each", "quantity": float(quantity), "kind": kind,
                "taxable": taxable, "amount": int((quantity * unit_price).quantize(Decimal(1), ROUND_HALF_UP)),
                **({"service_item_id": body["service_item_id"]} if body.get("service_item_id") else {})}

    @staticmethod
    def _cents(value: Any, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise invalid(field, "must be a whole number of cents")
        return int(value)

    def _store_item(self, jid: str, item: dict[str, Any], lid: str | None = None) -> dict[str, Any]:
        items = self.line_items[jid]
        stored = {"id": lid or self.new_id("li"), **item, "order_index": len(items)}
        items.append(stored)
        return dict(stored)

    def items_of(self, jid: str) -> list[dict[str, Any]]:
        self._job(jid)
        return [dict(i) for i in self.line_items[jid]]

    def add_item(self, jid: str, body: Any) -> dict[str, Any]:
        self._job(jid)
        stored = self._store_item(jid, self._line_item(body, "line item"))
        self.touch(jid)
        return stored

    def update_item(self, jid: str, lid: str, body: Any) -> dict[str, Any]:
        self._job(jid)
        items = self.line_items[jid]
        at = next((n for n, i in enumerate(items) if i["id"] == lid), None)
        if at is None:
            raise Refused(404, {})
        items[at] = {"id": lid, **self._line_item(body, "line item"), "order_index": at}
        self.touch(jid)
        return dict(items[at])

    def delete_item(self, jid: str, lid: str) -> dict[str, Any]:
        self._job(jid)
        if not any(i["id"] == lid for i in self.line_items[jid]):
            raise Refused(404, {})
        self.line_items[jid] = [i for i in self.line_items[jid] if i["id"] != lid]
        self.touch(jid)
        return {"id": lid, "deleted": True}

    def bulk_items(self, jid: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Items with an id replace that item, items without one are new; unless append_line_items, the job's
        items the request leaves out are deleted."""
        self._job(jid)
        entries = body.get("line_items")
        if not isinstance(entries, list):
            raise invalid("line_items", "is required: a list of line items")
        current = {i["id"]: i for i in self.line_items[jid]}
        ready = [(e.get("id") if isinstance(e, dict) else None, self._line_item(e, "line_items")) for e in entries]
        for lid, _ in ready:
            if lid is not None and lid not in current:
                raise invalid("line_items", f"names the line item {lid}, which is not on this job")
        kept = list(current.values()) if body.get("append_line_items") else []
        kept = [i for i in kept if i["id"] not in {lid for lid, _ in ready}]
        self.line_items[jid] = []
        for item in kept:
            self._store_item(jid, {k: v for k, v in item.items() if k not in ("id", "order_index")}, item["id"])
        for lid, item in ready:
            self._store_item(jid, item, lid)
        self.touch(jid)
        return self.items_of(jid)

    # ----- invoices: issued and paid in the app, only read through the API -----
    def issue_invoice(self, jid: str, due_in_days: int = 30) -> str:
        """The business issues the job's invoice in the app, from the job's line items as they are now."""
        job = self._job(jid)
        items = self.line_items[jid]
        subtotal = sum(-i["amount"] if "discount" in i["kind"] else i["amount"] for i in items)
        now = self.now()
        uuid = self.new_id("inv")
        appointments = self.appointments[jid]
        service = min((a["start"] for a in appointments), default=now)
        self.invoices[uuid] = {
            "id": uuid, "job_id": jid, "customer_id": job["customer_id"], "status": "open",
            "invoice_number": job["invoice_number"], "amount": subtotal, "subtotal": subtotal, "due_amount": subtotal,
            "due_at": stamp(now + timedelta(days=due_in_days)), "display_due_concept": f"Net {due_in_days}",
            "due_concept": f"net_{due_in_days}", "paid_at": None, "sent_at": stamp(now),
            "service_date": stamp(service), "invoice_date": stamp(now), "created_at": stamp(now),
            "items": [{"id": self.new_id("itm"), "name": i["name"], "unit_cost": i["unit_cost"],
                       "unit_price": i["unit_price"], "qty_in_hundredths": round(i["quantity"] * 100),
                       "amount": i["amount"], "description": i["description"], "type": i["kind"]} for i in items],
            "taxes": [], "discounts": [], "payments": [],
        }
        return uuid

    def pay_invoice(self, uuid: str, amount: int | None = None, method: str = "credit_card") -> None:
        """The customer paid (all that is due, or `amount` cents) and the business recorded it in the app."""
        invoice = self._invoice(uuid)
        paying = invoice["due_amount"] if amount is None else amount
        invoice["payments"].append({"id": self.new_id("pmt"), "status": "succeeded", "payment_method": method,
                                    "amount": paying, "note": "", "paid_at": stamp(self.now()), "category": method})
        invoice["due_amount"] -= paying
        if invoice["due_amount"] <= 0:
            invoice["status"], invoice["paid_at"] = "paid", stamp(self.now())

    def _invoice(self, uuid: str) -> dict[str, Any]:
        if uuid not in self.invoices:
            raise not_found("invoice")
        return self.invoices[uuid]

    def invoice(self, uuid: str) -> dict[str, Any]:
        return self._invoice_out(self._invoice(uuid), with_job=True)

    def invoices_of(self, jid: str) -> dict[str, Any]:
        self._job(jid)
        return {"invoices": [self._invoice_out(i, with_job=False) for i in self.invoices.values() if i["job_id"] == jid]}

    def list_invoices(self, q: Query) -> dict[str, Any]:
        rows = list(self.invoices.values())
        if statuses := q.many("status"):
            if unknown := set(statuses) - set(INVOICE_STATUSES):
                raise invalid("status", f"must be among {', '.join(INVOICE_STATUSES)}, not {', '.join(sorted(unknown))}")
            rows = [i for i in rows if i["status"] in statuses]
        if customers := q.many("customer_uuid"):
            rows = [i for i in rows if i["customer_id"] in customers]
        if methods := q.many("payment_method"):
            rows = [i for i in rows if any(p["payment_method"] in methods for p in i["payments"])]
        for field in ("created_at", "due_at", "paid_at"):
            low, high = q.time(f"{field}_min"), q.time(f"{field}_max")
            if low is not None:
                rows = [i for i in rows if i[field] and parse_time(i[field], field, UTC) >= low]
            if high is not None:
                rows = [i for i in rows if i[field] and parse_time(i[field], field, UTC) <= high]
        low_due, high_due = q.number("amount_due_min"), q.number("amount_due_max")
        rows = [i for i in rows if (low_due is None or i["due_amount"] >= low_due)
                and (high_due is None or i["due_amount"] <= high_due)]
        allowed = ("amount", "created_at", "due_amount", "due_at", "invoice_number", "paid_at", "sent_at", "status",
                   "updated_at")
        ordered = q.sorted([{**i, "updated_at": i["created_at"]} for i in rows], allowed)
        return q.page([self._invoice_out(i, with_job=True) for i in ordered], "invoices")

    @staticmethod
    def _invoice_out(invoice: dict[str, Any], with_job: bool) -> dict[str, Any]:
        hidden = {"customer_id", "created_at", "updated_at"} | (set() if with_job else {"job_id"})
        answer = {k: v for k, v in invoice.items() if k not in hidden}
        return {k: v for k, v in answer.items() if v is not None}  # the schema's dates are strings, never null
