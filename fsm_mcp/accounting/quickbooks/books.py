"""QuickBooks Online (Accounting v3) as a business's books.

Every path is /v3/company/{realmId}/...; a write carries `requestid` (at most 50 characters, unique per
company; the same one again answers as the first did). An invoice's DocNumber is derived from our invoice
id, so a read-back after an ambiguous failure finds it by `SELECT * FROM Invoice WHERE DocNumber = ...`.
Limits: 500 requests a minute and 10 at once per company. Webhooks name changed entities by id, in the
older `eventNotifications` payload or as CloudEvents (`qbo.payment.created.v1`); both are read.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx2 as httpx

from fsm_mcp.accounting.http import idempotency_key, open_client
from fsm_mcp.accounting.settings import AccountingSettings
from fsm_mcp.accounting.sink import Announced, Known, TheirCustomer, TheirInvoice
from fsm_mcp.connectors.http.lanes import Lanes
from fsm_mcp.errors import VendorRejected
from fsm_mcp.identity.names import parse_name
from fsm_mcp.models import Customer, Invoice
from fsm_mcp.store import Store

VENDOR, PROVIDER = "QuickBooks", "quickbooks"
KEY_MOST, DOC_MOST = 50, 21
MINOR = {"minorversion": "75"}


def describe(response: httpx.Response) -> str:
    try:
        errors = response.json()["Fault"]["Error"]
        return "; ".join(f"{e.get('Message')}: {e.get('Detail')} (code {e.get('code')})" for e in errors)
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


def doc_number(invoice_id: str) -> str:
    plain = invoice_id.removeprefix("inv_")
    return plain if len(plain) <= DOC_MOST else hashlib.sha256(invoice_id.encode()).hexdigest()[:DOC_MOST]


def quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def number(amount: Decimal) -> float:
    """Intuit's JSON numbers; a float prints a two-place amount back exactly (12.34, not 12.3399...)."""
    return float(amount)


def money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


class QuickBooks:
    provider, vendor = PROVIDER, VENDOR

    def __init__(self, db: Store, tenant: str, settings: AccountingSettings,
                 transport: httpx.AsyncBaseTransport | None = None, lanes: Lanes | None = None, replicas: int = 1) -> None:
        self.settings = settings
        self.company = settings.company
        self.client, self.grant, self.bounded = open_client(VENDOR, PROVIDER, db, tenant, settings, describe, transport,
                                                            lanes, {"Accept": "application/json"}, replicas)
        self.base = f"/v3/company/{settings.company}"
        self.clock = db.clock

    def key(self, kind: str, tenant: str, our_id: str) -> str:
        return idempotency_key(kind, tenant, our_id, KEY_MOST)

    async def probe(self) -> None:
        await self.query("SELECT COUNT(*) FROM Customer")

    async def query(self, text: str) -> dict[str, Any]:
        body = await self.client.get(f"{self.base}/query", {"query": text, **MINOR})
        return dict(body.get("QueryResponse") or {})

    async def _write(self, entity: str, body: dict[str, Any], key: str, check: Any, what: str,
                     path: str | None = None) -> dict[str, Any]:
        answer = await self.client.write("POST", path or f"{self.base}/{entity.lower()}", json=body,
                                         params={"requestid": key, **MINOR}, check=check, what=what)
        return dict(answer[entity])

    # ----- customers -----
    async def customers_like(self, customer: Customer) -> list[TheirCustomer]:
        name = parse_name(customer.name)
        texts = []
        if name.family:
            texts.append(f"SELECT * FROM Customer WHERE DisplayName LIKE {quoted('%' + name.family + '%')} MAXRESULTS 1000")
        texts += [f"SELECT * FROM Customer WHERE PrimaryEmailAddr = {quoted(e)}" for e in customer.emails]
        found: dict[str, TheirCustomer] = {}
        for text in texts:
            for row in (await self.query(text)).get("Customer", []):
                found[str(row["Id"])] = TheirCustomer(
                    str(row["Id"]), str(row.get("DisplayName") or ""),
                    tuple(str(row[k]["FreeFormNumber"]) for k in ("PrimaryPhone", "Mobile", "AlternatePhone")
                          if (row.get(k) or {}).get("FreeFormNumber")),
                    tuple([row["PrimaryEmailAddr"]["Address"]] if (row.get("PrimaryEmailAddr") or {}).get("Address") else []))
        return list(found.values())

    async def create_customer(self, customer: Customer, display: str, key: str) -> str:
        name = parse_name(customer.name)
        body: dict[str, Any] = {"DisplayName": display, "GivenName": customer.name.split(" ")[0][:100],
                                "FamilyName": (name.family or "")[:100] or None}
        if customer.emails:
            body["PrimaryEmailAddr"] = {"Address": customer.emails[0]}
        if customer.phones:
            body["PrimaryPhone"] = {"FreeFormNumber": customer.phones[0].number}
        if customer.locations:
            a = customer.locations[0].address
            body["BillAddr"] = {"Line1": a.street, "City": a.city, "CountrySubDivisionCode": a.state,
                                "PostalCode": a.postal_code}

        async def check() -> dict[str, Any] | None:
            rows = (await self.query(f"SELECT * FROM Customer WHERE DisplayName = {quoted(display)}")).get("Customer")
            return {"Customer": rows[0]} if rows else None

        return str((await self._write("Customer", body, key, check, f"the customer {display}"))["Id"])

    # ----- invoices -----
    async def create_invoice(self, invoice: Invoice, reference: str, customer: str, email: str | None,
                             key: str) -> str:
        doc = doc_number(invoice.invoice_id)
        lines: list[dict[str, Any]] = [
            {"Amount": number(line.amount), "Description": line.description[:4000], "DetailType": "SalesItemLineDetail",
             "SalesItemLineDetail": {"ItemRef": {"value": self.settings.item}, "Qty": number(line.quantity),
                                     "UnitPrice": number(line.unit_price)}}
            for line in invoice.line_items]
        if invoice.discount:
            lines.append({"Amount": number(invoice.discount), "DetailType": "DiscountLineDetail",
                          "DiscountLineDetail": {"PercentBased": False}})
        body: dict[str, Any] = {
            "CustomerRef": {"value": customer}, "DocNumber": doc, "Line": lines,
            "TxnDate": invoice.created_at.date().isoformat(),
            "DueDate": (invoice.created_at.date() + timedelta(days=self.settings.due_days)).isoformat(),
            "TxnTaxDetail": {"TotalTax": number(invoice.tax)},
            "CustomerMemo": {"value": reference}, "PrivateNote": f"fsm-mcp invoice {invoice.invoice_id}; {reference}",
        }
        if email:
            body["BillEmail"] = {"Address": email}

        async def check() -> dict[str, Any] | None:
            rows = (await self.query(f"SELECT * FROM Invoice WHERE DocNumber = {quoted(doc)}")).get("Invoice")
            return {"Invoice": rows[0]} if rows else None

        return str((await self._write("Invoice", body, key, check, f"the invoice {doc}"))["Id"])

    async def email_invoice(self, their_id: str, key: str) -> None:
        await self.client.write("POST", f"{self.base}/invoice/{their_id}/send",
                                params={"requestid": key, **MINOR}, what="the invoice's e-mail",
                                check=lambda: self._emailed(their_id))

    async def _emailed(self, their_id: str) -> dict[str, Any] | None:
        row = (await self.client.get(f"{self.base}/invoice/{their_id}", MINOR))["Invoice"]
        return row if row.get("EmailStatus") == "EmailSent" else None

    async def invoice(self, their_id: str, known: Known | None = None) -> TheirInvoice:
        return await self._state(their_id, known, {})

    async def _state(self, their_id: str, known: Known | None, fresh: dict[str, dict[str, Any]]) -> TheirInvoice:
        """The invoice with the amount each payment applies to it: a payment already recorded on ours (`known`)
        or just read (`fresh`) is not read again; only one new to us is (Intuit's invoice names its payments but
        not their amounts)."""
        row = (await self.client.get(f"{self.base}/invoice/{their_id}", MINOR))["Invoice"]
        recorded = (await known(their_id) or {}) if known is not None else {}
        payments: list[tuple[str, Decimal]] = []
        for linked in row.get("LinkedTxn") or []:
            if linked.get("TxnType") != "Payment":
                continue
            pid = str(linked["TxnId"])
            if pid in fresh:
                lines = applied_lines(fresh[pid])
            elif pid in recorded:
                payments.append((pid, recorded[pid]))
                continue
            else:
                lines = await self._applied(pid)
            payments += [(p, amount) for i, p, amount in lines if i == their_id]
        return TheirInvoice(their_id, money(row.get("TotalAmt")), money(row.get("Balance")), tuple(payments))

    async def _payment_row(self, payment_id: str) -> dict[str, Any] | None:
        try:
            return dict((await self.client.get(f"{self.base}/payment/{payment_id}", MINOR))["Payment"])
        except VendorRejected as exc:
            if exc.status == 400:  # Object Not Found: deleted since
                return None
            raise

    async def _applied(self, payment_id: str) -> list[tuple[str, str, Decimal]]:
        """(invoice id, payment id, amount) for each invoice the payment is applied to."""
        row = await self._payment_row(payment_id)
        return applied_lines(row) if row is not None else []

    async def payment(self, their_id: str, known: Known | None = None) -> list[TheirInvoice]:
        row = await self._payment_row(their_id)
        if row is None:
            return []
        states = []
        for invoice_id in dict.fromkeys(i for i, _, _ in applied_lines(row)):
            if known is not None and await known(invoice_id) is None:
                continue  # not one of ours: nothing to read
            states.append(await self._state(invoice_id, known, {their_id: row}))
        return states

    async def changed_since(self, since: datetime, known: Known | None = None) -> list[TheirInvoice]:
        since = max(since, self.clock.now() - timedelta(days=29, hours=23))  # CDC reaches back 30 days
        body = await self.client.get(f"{self.base}/cdc", {"entities": "Invoice,Payment",
                                                          "changedSince": since.isoformat(), **MINOR})
        invoices: dict[str, dict[str, Any]] = {}
        paid: dict[str, list[tuple[str, Decimal]]] = {}
        for response in body.get("CDCResponse") or []:
            for part in response.get("QueryResponse") or []:
                for row in part.get("Invoice", []):
                    invoices[str(row["Id"])] = row
                for row in part.get("Payment", []):
                    for invoice_id, pid, amount in applied_lines(row):
                        paid.setdefault(invoice_id, []).append((pid, amount))
        states = [TheirInvoice(i, money(r.get("TotalAmt")), money(r.get("Balance")), tuple(paid.get(i, [])))
                  for i, r in invoices.items()]
        for i in paid:
            if i not in invoices and (known is None or await known(i) is not None):
                states.append(await self.invoice(i, known))
        return states

    async def aclose(self) -> None:
        await self.client.http.aclose()


def applied_lines(row: dict[str, Any]) -> list[tuple[str, str, Decimal]]:
    found = []
    for line in row.get("Line") or []:
        for linked in line.get("LinkedTxn") or []:
            if linked.get("TxnType") == "Invoice":
                found.append((str(linked["TxnId"]), str(row["Id"]), money(line.get("Amount"))))
    return found


def parse(body: bytes) -> list[Announced]:
    """Invoice and payment changes a delivery announces, in either form Intuit sends."""
    payload = json.loads(body)
    news = []
    if isinstance(payload, dict):
        for notification in payload.get("eventNotifications") or []:
            realm = str(notification.get("realmId") or "")
            for entity in (notification.get("dataChangeEvent") or {}).get("entities") or []:
                kind = str(entity.get("name") or "").lower()
                if kind in ("invoice", "payment"):
                    news.append(Announced(kind, str(entity["id"]), realm))
        return news
    for event in payload:  # CloudEvents: a list of {"type": "qbo.<entity>.<verb>.v1", "intuitentityid": ...}
        parts = str(event.get("type") or "").split(".")
        if len(parts) >= 3 and parts[0] == "qbo" and parts[1] in ("invoice", "payment"):
            news.append(Announced(parts[1], str(event["intuitentityid"]), str(event.get("intuitaccountid") or "")))
    return news
