"""Xero (Accounting API 2.0) as a business's books.

Every request names the organisation in `Xero-Tenant-Id`; a write carries `Idempotency-Key` (at most 128
characters; the same key again answers as the first did). A contact carries our customer's id as its
ContactNumber and an invoice ours as its InvoiceNumber, so a read-back after an ambiguous failure finds
them (GET /Contacts/{ContactNumber}, GET /Invoices?InvoiceNumbers=...). Invoices are AUTHORISED sales
invoices (ACCREC) so that payments can be applied to them. Limits: 60 calls a minute, 5 at once, 5,000 a
day per organisation. Webhooks announce CONTACT and INVOICE changes (a payment changes its invoice);
change data capture is `If-Modified-Since` on the invoice list.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx2 as httpx

from fsm_mcp.accounting.http import first, idempotency_key, open_client
from fsm_mcp.accounting.settings import AccountingSettings
from fsm_mcp.accounting.sink import Announced, Known, TheirCustomer, TheirInvoice
from fsm_mcp.billing import cents
from fsm_mcp.connectors.http.lanes import Lanes
from fsm_mcp.errors import VendorRejected
from fsm_mcp.identity.names import parse_name
from fsm_mcp.models import Customer, Invoice
from fsm_mcp.store import Store

VENDOR, PROVIDER = "Xero", "xero"
KEY_MOST = 128
API = "/api.xro/2.0"


def describe(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}"
    messages = [e.get("Message") for el in body.get("Elements") or [] for e in el.get("ValidationErrors") or []]
    return "; ".join(str(m) for m in messages if m) or str(body.get("Detail") or body.get("Message") or
                                                           f"HTTP {response.status_code}")


def money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def state(row: dict[str, Any]) -> TheirInvoice:
    return TheirInvoice(str(row["InvoiceID"]), money(row.get("Total")), money(row.get("AmountDue")),
                        tuple((str(p["PaymentID"]), money(p.get("Amount"))) for p in row.get("Payments") or []))


class Xero:
    provider, vendor = PROVIDER, VENDOR

    def __init__(self, db: Store, tenant: str, settings: AccountingSettings,
                 transport: httpx.AsyncBaseTransport | None = None, lanes: Lanes | None = None, replicas: int = 1) -> None:
        self.settings = settings
        self.company = settings.company
        self.clock = db.clock
        self.client, self.grant, self.bounded = open_client(
            VENDOR, PROVIDER, db, tenant, settings, describe, transport, lanes,
            {"Xero-Tenant-Id": settings.company, "Accept": "application/json"}, replicas, per_day=settings.per_day)

    def key(self, kind: str, tenant: str, our_id: str) -> str:
        return idempotency_key(kind, tenant, our_id, KEY_MOST)

    async def probe(self) -> None:
        await self.client.get(f"{API}/Contacts", {"page": 1, "pageSize": 1})

    async def _found(self, path: str, params: dict[str, Any] | None = None) -> Any:
        try:
            return await self.client.get(path, params)
        except VendorRejected as exc:
            if exc.status == 404:
                return None
            raise

    # ----- contacts -----
    async def customers_like(self, customer: Customer) -> list[TheirCustomer]:
        family = parse_name(customer.name).family
        terms = [t for t in (family, *customer.emails) if t]
        found: dict[str, TheirCustomer] = {}
        for term in terms:
            body = await self.client.get(f"{API}/Contacts", {"searchTerm": term, "page": 1, "pageSize": 100})
            for row in body.get("Contacts") or []:
                if row.get("ContactStatus", "ACTIVE") != "ACTIVE":
                    continue
                found[str(row["ContactID"])] = TheirCustomer(
                    str(row["ContactID"]), str(row.get("Name") or ""),
                    tuple(str(p["PhoneNumber"]) for p in row.get("Phones") or [] if p.get("PhoneNumber")),
                    tuple([row["EmailAddress"]] if row.get("EmailAddress") else []))
        return list(found.values())

    async def create_customer(self, customer: Customer, display: str, key: str) -> str:
        name = parse_name(customer.name)
        contact: dict[str, Any] = {"Name": display, "ContactNumber": customer.customer_id[:50],
                                   "FirstName": customer.name.split(" ")[0], "LastName": name.family or "",
                                   "EmailAddress": customer.emails[0] if customer.emails else ""}
        if customer.phones:
            contact["Phones"] = [{"PhoneType": "MOBILE", "PhoneNumber": customer.phones[0].number}]
        if customer.locations:
            a = customer.locations[0].address
            contact["Addresses"] = [{"AddressType": "STREET", "AddressLine1": a.street, "City": a.city or "",
                                     "Region": a.state or "", "PostalCode": a.postal_code or ""}]

        async def check() -> dict[str, Any] | None:
            body = await self._found(f"{API}/Contacts/{customer.customer_id[:50]}")
            return body if body and first(body.get("Contacts")) else None

        answer = await self.client.write("PUT", f"{API}/Contacts", json={"Contacts": [contact]}, check=check,
                                         headers={"Idempotency-Key": key}, what=f"the contact {display}")
        return str(answer["Contacts"][0]["ContactID"])

    # ----- invoices -----
    async def create_invoice(self, invoice: Invoice, reference: str, customer: str, email: str | None,
                             key: str) -> str:
        lines = [{"Description": line.description[:4000], "Quantity": float(line.quantity),
                  "UnitAmount": float(line.unit_price), "AccountCode": self.settings.account,
                  "TaxType": self.settings.tax_type if invoice.tax_rate else "NONE"} for line in invoice.line_items]
        amounts = [line.amount for line in invoice.line_items]
        if invoice.discount:
            lines.append({"Description": "Discount", "Quantity": 1.0, "UnitAmount": -float(invoice.discount),
                          "AccountCode": self.settings.account,
                          "TaxType": self.settings.tax_type if invoice.tax_rate else "NONE"})
            amounts.append(-invoice.discount)
        for line, tax in zip(lines, spread(invoice.tax, amounts), strict=True):
            line["TaxAmount"] = float(tax)  # our tax, to the cent, whatever rate the organisation's tax type has
        day = invoice.created_at.date()
        body = {"Invoices": [{
            "Type": "ACCREC", "Contact": {"ContactID": customer}, "InvoiceNumber": invoice.invoice_id,
            "Reference": reference[:255], "Date": day.isoformat(),
            "DueDate": (day + timedelta(days=self.settings.due_days)).isoformat(),
            "LineAmountTypes": "Exclusive", "LineItems": lines, "Status": "AUTHORISED"}]}

        async def check() -> dict[str, Any] | None:
            found = await self.client.get(f"{API}/Invoices", {"InvoiceNumbers": invoice.invoice_id})
            return found if first(found.get("Invoices")) else None

        answer = await self.client.write("PUT", f"{API}/Invoices", json=body, check=check,
                                         headers={"Idempotency-Key": key}, what=f"the invoice {invoice.invoice_id}")
        return str(answer["Invoices"][0]["InvoiceID"])

    async def email_invoice(self, their_id: str, key: str) -> None:
        async def check() -> dict[str, Any] | None:
            row = first((await self.client.get(f"{API}/Invoices/{their_id}")).get("Invoices")) or {}
            return row if row.get("SentToContact") else None

        await self.client.write("POST", f"{API}/Invoices/{their_id}/Email", json={}, check=check,
                                headers={"Idempotency-Key": key}, what="the invoice's e-mail")

    async def invoice(self, their_id: str, known: Known | None = None) -> TheirInvoice:
        return state((await self.client.get(f"{API}/Invoices/{their_id}"))["Invoices"][0])

    async def payment(self, their_id: str, known: Known | None = None) -> list[TheirInvoice]:
        body = await self._found(f"{API}/Payments/{their_id}")
        row = first((body or {}).get("Payments"))
        if not row or (known is not None and await known(str(row["Invoice"]["InvoiceID"])) is None):
            return []  # gone, or applied to an invoice that is not ours
        return [await self.invoice(str(row["Invoice"]["InvoiceID"]))]

    async def changed_since(self, since: datetime, known: Known | None = None) -> list[TheirInvoice]:
        found: list[TheirInvoice] = []
        page = 1
        while True:
            body = await self.client.get(f"{API}/Invoices", {"page": page, "pageSize": 1000, "where": 'Type=="ACCREC"'},
                                         headers={"If-Modified-Since": since.isoformat()})
            rows = body.get("Invoices") or []
            found += [state(r) for r in rows]
            if len(rows) < 1000:
                return found
            page += 1

    async def aclose(self) -> None:
        await self.client.http.aclose()


def spread(tax: Decimal, amounts: list[Decimal]) -> list[Decimal]:
    """`tax` over the lines in proportion to their amounts, to the cent, the rounding left on the largest line."""
    base = sum(amounts, Decimal(0))
    if not tax or not base:
        return [Decimal("0.00")] * len(amounts)
    shares = [cents(tax * a / base) for a in amounts]
    largest = max(range(len(amounts)), key=lambda i: amounts[i])
    shares[largest] += tax - sum(shares, Decimal(0))
    return shares


def parse(body: bytes) -> list[Announced]:
    payload = json.loads(body)
    return [Announced(str(e["eventCategory"]).lower(), str(e["resourceId"]), str(e.get("tenantId") or ""))
            for e in payload.get("events") or [] if str(e.get("eventCategory")).upper() in ("INVOICE", "PAYMENT")]
