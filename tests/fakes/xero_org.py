"""One Xero organisation as the fake keeps it: contacts, items, sales invoices and their payments,
with the rules Xero's accounting OpenAPI in ../shared/specs/xero states in its descriptions: a
contact's Name is unique across active contacts; an invoice names its Contact by ContactID, or by
Name (an unknown name makes a new contact, as Xero does); a line's LineAmount is Quantity x
UnitAmount; Xero computes SubTotal, TotalTax, Total, AmountDue and AmountPaid; a payment needs an
Invoice, a bank Account, a Date and an Amount no more than the amount due, on an AUTHORISED
invoice, which becomes PAID when nothing is left due. Updates (POST) change only the fields they
name. Each change is kept as a webhook event (CONTACT or INVOICE; a payment updates its invoice)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from tests.fakes.xero_where import MS_DATE

ACCOUNTS = {"090": "BANK", "091": "BANK", "200": "REVENUE", "260": "REVENUE", "400": "EXPENSE"}
TAX_RATES = {"NONE": Decimal(0), "EXEMPTOUTPUT": Decimal(0), "OUTPUT": Decimal("0.0825")}
STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED")
PHONE_TYPES = ("DEFAULT", "DDI", "MOBILE", "FAX", "OFFICE")


class Invalid(Exception):
    def __init__(self, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)


class NotFound(Exception):
    pass


def ms_date(at: datetime) -> str:
    return f"/Date({int(at.timestamp() * 1000)}+0000)/"


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def number(value: Any, name: str) -> Decimal:
    try:
        if isinstance(value, bool):
            raise InvalidOperation
        found = Decimal(str(value))
        if not found.is_finite():
            raise InvalidOperation
        return found
    except InvalidOperation:
        raise Invalid(f"{name} must be a number.") from None


def at_midnight(day: date) -> str:
    return ms_date(datetime(day.year, day.month, day.day, tzinfo=UTC))


def a_date(value: Any, name: str) -> date:
    """A date as sent (YYYY-MM-DD, or a date-time) or as Xero answers it (/Date(ms+0000)/)."""
    if isinstance(value, str) and (match := MS_DATE.fullmatch(value)):
        return datetime.fromtimestamp(int(match[1]) / 1000, UTC).date()
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise Invalid(f"{name} must be a date, YYYY-MM-DD.") from None


def out(amount: Decimal) -> float:
    return float(cents(amount))


@dataclass(frozen=True)
class Event:
    category: str  # CONTACT or INVOICE
    resource_id: str
    kind: str  # CREATE or UPDATE
    at: datetime


class Organisation:
    def __init__(self, tenant_id: str, name: str, now: Callable[[], datetime]) -> None:
        self.tenant_id, self.name, self.now = tenant_id, name, now
        self.tables: dict[str, dict[str, dict[str, Any]]] = {"Contacts": {}, "Items": {}, "Invoices": {}, "Payments": {}}
        self.changed: dict[str, datetime] = {}  # id -> when last created or updated
        self.events: list[Event] = []
        self.numbers = itertools.count(1)

    def get(self, kind: str, ident: str) -> dict[str, Any]:
        row = self.tables[kind].get(ident.lower())
        if row is None:
            raise NotFound(f"{kind} {ident}")
        return row

    def _touch(self, kind: str, row: dict[str, Any], ident: str, created: bool) -> None:
        at = self.now()
        row["UpdatedDateUTC"] = ms_date(at)
        self.tables[kind][ident] = row
        self.changed[ident] = at
        if kind in ("Contacts", "Invoices"):
            self.events.append(Event(kind[:-1].upper(), ident, "CREATE" if created else "UPDATE", at))

    # ----- contacts -----
    def save_contact(self, body: dict[str, Any], ident: str | None = None) -> dict[str, Any]:
        ident = (ident or body.get("ContactID") or "").lower() or None
        current = self.get("Contacts", ident) if ident else None
        fields = {**(current or {}), **{k: v for k, v in body.items() if k not in ("ContactID", "UpdatedDateUTC")}}
        name = str(fields.get("Name") or "").strip()
        problems = []
        if not name:
            problems.append("The contact name must be specified.")
        elif len(name) > 255:
            problems.append("The contact name must be 255 characters or fewer.")
        elif any(c["Name"].lower() == name.lower() and c["ContactStatus"] == "ACTIVE" and c["ContactID"] != ident
                 for c in self.tables["Contacts"].values()):
            problems.append(f"The contact name {name} is already assigned to another contact. The contact name must be "
                            "unique across all active contacts.")
        email = str(fields.get("EmailAddress") or "")
        if email and ("@" not in email or "." not in email.partition("@")[2] or len(email) > 255):
            problems.append("Email address must be valid.")
        for phone in fields.get("Phones") or []:
            if not isinstance(phone, dict) or phone.get("PhoneType", "DEFAULT") not in PHONE_TYPES \
                    or len(str(phone.get("PhoneNumber") or "")) > 50:
                problems.append(f"Phones must each have a PhoneType of {', '.join(PHONE_TYPES)} and a PhoneNumber of "
                                "at most 50 characters.")
        if len(str(fields.get("ContactNumber") or "")) > 50:
            problems.append("ContactNumber must be 50 characters or fewer.")
        if problems:
            raise Invalid(*problems)
        ident = ident or str(uuid.uuid4())
        row = {"ContactStatus": "ACTIVE", "Addresses": [], "Phones": [], "IsSupplier": False, "IsCustomer": False,
               **fields, "ContactID": ident, "Name": name, "HasValidationErrors": False}
        self._touch("Contacts", row, ident, current is None)
        return row

    def contact_for(self, ref: Any) -> dict[str, Any]:
        """An invoice's Contact: by ContactID, else by Name (made when no active contact has it)."""
        if not isinstance(ref, dict) or not (ref.get("ContactID") or ref.get("Name")):
            raise Invalid("A Contact with a ContactID or a Name must be specified.")
        if ref.get("ContactID"):
            try:
                return self.get("Contacts", str(ref["ContactID"]))
            except NotFound:
                raise Invalid(f"The Contact {ref['ContactID']} does not exist.") from None
        name = str(ref["Name"]).strip().lower()
        found = [c for c in self.tables["Contacts"].values() if c["Name"].lower() == name and c["ContactStatus"] == "ACTIVE"]
        return found[0] if found else self.save_contact({k: v for k, v in ref.items() if k != "ContactID"})

    # ----- items -----
    def save_item(self, body: dict[str, Any], ident: str | None = None) -> dict[str, Any]:
        ident = (ident or body.get("ItemID") or "").lower() or None
        current = self.get("Items", ident) if ident else None
        fields = {**(current or {}), **{k: v for k, v in body.items() if k not in ("ItemID", "UpdatedDateUTC")}}
        code = str(fields.get("Code") or "").strip()
        if not code or len(code) > 30:
            raise Invalid("Item Code must be specified, 30 characters or fewer.")
        if len(str(fields.get("Name") or "")) > 50:
            raise Invalid("Item Name must be 50 characters or fewer.")
        if any(i["Code"].lower() == code.lower() and i["ItemID"] != ident for i in self.tables["Items"].values()):
            raise Invalid(f"Item code '{code}' already exists.")
        ident = ident or str(uuid.uuid4())
        row = {"IsSold": True, "IsPurchased": True, **fields, "ItemID": ident, "Code": code}
        self._touch("Items", row, ident, current is None)
        return row

    # ----- invoices -----
    def save_invoice(self, body: dict[str, Any], ident: str | None = None) -> dict[str, Any]:
        ident = (ident or body.get("InvoiceID") or "").lower() or None
        current = self.get("Invoices", ident) if ident else None
        if current and current["Status"] in ("PAID", "VOIDED", "DELETED"):
            raise Invalid(f"This invoice is {current['Status']} and cannot be changed.")
        if current and current["Payments"] and ("LineItems" in body or body.get("Status") in ("VOIDED", "DELETED")):
            raise Invalid("Invoice not of valid status for modification: it has payments applied.")
        fields = {**(current or {}), **{k: v for k, v in body.items() if k not in ("InvoiceID", "UpdatedDateUTC")}}
        kind = fields.get("Type")
        if kind not in ("ACCREC", "ACCPAY"):
            raise Invalid("Type must be ACCREC (a sales invoice) or ACCPAY (a bill).")
        status = fields.get("Status") or "DRAFT"
        if status not in STATUSES or status == "PAID":
            raise Invalid("Status must be DRAFT, SUBMITTED, AUTHORISED, VOIDED or DELETED.")
        if status == "VOIDED" and (current is None or current["Status"] != "AUTHORISED"):
            raise Invalid("Only an AUTHORISED invoice can be voided.")
        if status == "DELETED" and (current is None or current["Status"] not in ("DRAFT", "SUBMITTED")):
            raise Invalid("Only a DRAFT or SUBMITTED invoice can be deleted.")
        problems: list[str] = []
        lines, subtotal, tax = self._lines(fields.get("LineItems") or [], fields.get("LineAmountTypes") or "Exclusive",
                                           kind, status, problems)
        if not lines and status in ("SUBMITTED", "AUTHORISED"):
            problems.append("At least one line item is required to approve an invoice.")
        day = a_date(body.get("Date") or (current or {}).get("DateString") or self.now().date().isoformat(), "Date")
        due_given = body.get("DueDate") or (current or {}).get("DueDateString")
        due = a_date(due_given, "DueDate") if due_given else None
        if status in ("SUBMITTED", "AUTHORISED") and due is None:
            problems.append("Due Date must be specified to approve an invoice.")
        number_ = str(fields.get("InvoiceNumber") or "")
        if kind == "ACCREC" and number_ and any(i["InvoiceNumber"].lower() == number_.lower() and i["InvoiceID"] != ident
                                                for i in self.tables["Invoices"].values()):
            problems.append("Invoice # must be unique.")
        if len(str(fields.get("Reference") or "")) > 255:
            problems.append("Reference must be 255 characters or fewer.")
        if problems:
            raise Invalid(*problems)
        contact = self.contact_for(fields.get("Contact"))
        contact["IsCustomer" if kind == "ACCREC" else "IsSupplier"] = True
        ident = ident or str(uuid.uuid4())
        paid = sum((Decimal(str(p["Amount"])) for p in (current or {}).get("Payments", [])), Decimal(0))
        total = subtotal + tax
        row = {**fields, "InvoiceID": ident, "Type": kind, "Status": status,
               "InvoiceNumber": number_ or f"INV-{next(self.numbers):04d}",
               "Contact": {"ContactID": contact["ContactID"], "Name": contact["Name"]},
               "LineAmountTypes": fields.get("LineAmountTypes") or "Exclusive", "LineItems": lines,
               "SubTotal": out(subtotal), "TotalTax": out(tax), "Total": out(total), "AmountPaid": out(paid),
               "AmountDue": out(total - paid), "AmountCredited": 0.0, "Payments": (current or {}).get("Payments", []),
               "CurrencyCode": fields.get("CurrencyCode") or "USD", "SentToContact": bool(fields.get("SentToContact")),
               "HasErrors": False}
        row |= {"Date": at_midnight(day), "DateString": f"{day}T00:00:00"}
        if due is not None:
            row |= {"DueDate": at_midnight(due), "DueDateString": f"{due}T00:00:00"}
        self._touch("Invoices", row, ident, current is None)
        return row

    def _lines(self, given: Any, amounts: str, kind: str, status: str, problems: list[str]
               ) -> tuple[list[dict[str, Any]], Decimal, Decimal]:
        if amounts not in ("Exclusive", "Inclusive", "NoTax"):
            problems.append("LineAmountTypes must be Exclusive, Inclusive or NoTax.")
            return [], Decimal(0), Decimal(0)
        lines, subtotal, tax = [], Decimal(0), Decimal(0)
        for n, line in enumerate(given if isinstance(given, list) else [None], 1):
            if not isinstance(line, dict):
                problems.append(f"Line {n} must be an object.")
                continue
            item = next((i for i in self.tables["Items"].values() if line.get("ItemCode")
                         and i["Code"].lower() == str(line["ItemCode"]).lower()), None)
            if line.get("ItemCode") and item is None:
                problems.append(f"Item code '{line['ItemCode']}' is not valid.")
            details = (item or {}).get("SalesDetails") or {}
            description = str(line.get("Description") or (item or {}).get("Description") or "")
            if not description:
                problems.append(f"Description needs to be at least 1 char long (line {n}).")
            quantity = number(line.get("Quantity", 1), "Quantity")
            unit = number(line.get("UnitAmount", details.get("UnitPrice", 0)), "UnitAmount")
            discount = number(line.get("DiscountRate", 0), "DiscountRate")
            amount = cents(quantity * unit * (1 - discount / 100))
            if line.get("LineAmount") is not None and cents(number(line["LineAmount"], "LineAmount")) != amount:
                problems.append(f"The LineAmount of line {n} must be Quantity x UnitAmount less any discount ({amount}).")
            account = str(line.get("AccountCode") or details.get("AccountCode") or "")
            if account and account not in ACCOUNTS:
                problems.append(f"Account code '{account}' is not a valid code for this document.")
            elif not account and status in ("SUBMITTED", "AUTHORISED"):
                problems.append(f"Account code must be specified on line {n} to approve the invoice.")
            tax_type = str(line.get("TaxType") or details.get("TaxType") or ("NONE" if amounts == "NoTax" else "OUTPUT"))
            if tax_type not in TAX_RATES:
                problems.append(f"TaxType '{tax_type}' is not valid; use one of {', '.join(TAX_RATES)}.")
                continue
            rate = Decimal(0) if amounts == "NoTax" else TAX_RATES[tax_type]
            line_tax = cents(amount * rate) if amounts == "Exclusive" else cents(amount - amount / (1 + rate))
            if line.get("TaxAmount") is not None:
                line_tax = cents(number(line["TaxAmount"], "TaxAmount"))  # Xero lets the computed tax be overridden
            subtotal += amount if amounts != "Inclusive" else amount - line_tax
            tax += line_tax
            lines.append({**line, "LineItemID": line.get("LineItemID") or str(uuid.uuid4()), "Description": description,
                          "Quantity": float(quantity), "UnitAmount": float(unit), "LineAmount": out(amount),
                          "AccountCode": account, "TaxType": tax_type, "TaxAmount": out(line_tax)})
        return lines, subtotal, tax

    def emailed(self, ident: str) -> None:
        invoice = self.get("Invoices", ident)
        if invoice["Status"] not in ("AUTHORISED", "PAID") or invoice["Type"] != "ACCREC":
            raise Invalid("Only approved sales invoices can be emailed.")
        if not self.get("Contacts", invoice["Contact"]["ContactID"]).get("EmailAddress"):
            raise Invalid("The contact has no email address.")
        invoice["SentToContact"] = True
        self._touch("Invoices", invoice, invoice["InvoiceID"], False)

    # ----- payments -----
    def pay(self, body: dict[str, Any]) -> dict[str, Any]:
        ref, account = body.get("Invoice") or {}, body.get("Account") or {}
        problems = []
        invoice = None
        if ref.get("InvoiceID"):
            invoice = self.tables["Invoices"].get(str(ref["InvoiceID"]).lower())
        elif ref.get("InvoiceNumber") or body.get("InvoiceNumber"):
            wanted = str(ref.get("InvoiceNumber") or body.get("InvoiceNumber")).lower()
            invoice = next((i for i in self.tables["Invoices"].values() if i["InvoiceNumber"].lower() == wanted), None)
        if invoice is None:
            problems.append("An existing Invoice (InvoiceID or InvoiceNumber) must be specified.")
        code = str(account.get("Code") or body.get("Code") or "")
        if not (code or account.get("AccountID")):
            problems.append("An Account (Code or AccountID) must be specified.")
        elif code and ACCOUNTS.get(code) != "BANK":
            problems.append(f"Account {code} is not a bank account; payments go to a bank account.")
        if not body.get("Date"):
            problems.append("Date must be specified.")
        amount = cents(number(body.get("Amount"), "Amount")) if body.get("Amount") is not None else None
        if amount is None or amount <= 0:
            problems.append("Amount must be specified and more than zero.")
        if invoice is not None and invoice["Status"] != "AUTHORISED":
            problems.append("Payment can only be made against an AUTHORISED invoice.")
        elif invoice is not None and amount is not None and amount > Decimal(str(invoice["AmountDue"])):
            problems.append("Payment amount exceeds the amount outstanding on this document.")
        if problems:
            raise Invalid(*problems)
        assert invoice is not None and amount is not None
        when = a_date(body["Date"], "Date")
        ident = str(uuid.uuid4())
        row = {"PaymentID": ident, "Date": at_midnight(when),
               "Amount": out(amount), "Reference": body.get("Reference") or "", "Status": "AUTHORISED",
               "PaymentType": "ACCRECPAYMENT" if invoice["Type"] == "ACCREC" else "ACCPAYPAYMENT",
               "IsReconciled": bool(body.get("IsReconciled")), "Account": {"Code": code} if code else account,
               "Invoice": {"InvoiceID": invoice["InvoiceID"], "InvoiceNumber": invoice["InvoiceNumber"],
                           "Contact": invoice["Contact"], "Type": invoice["Type"]}}
        self._touch("Payments", row, ident, True)
        invoice["Payments"] = [*invoice["Payments"], {"PaymentID": ident, "Date": row["Date"], "Amount": row["Amount"]}]
        self._settle(invoice)
        return row

    def unpay(self, ident: str, body: dict[str, Any]) -> dict[str, Any]:
        payment = self.get("Payments", ident)
        if body.get("Status") != "DELETED":
            raise Invalid("A payment can only be changed to Status DELETED.")
        if payment["Status"] == "DELETED":
            raise Invalid("The payment is already deleted.")
        payment["Status"] = "DELETED"
        self._touch("Payments", payment, payment["PaymentID"], False)
        invoice = self.get("Invoices", payment["Invoice"]["InvoiceID"])
        invoice["Payments"] = [p for p in invoice["Payments"] if p["PaymentID"] != payment["PaymentID"]]
        self._settle(invoice)
        return payment

    def _settle(self, invoice: dict[str, Any]) -> None:
        paid = sum((Decimal(str(p["Amount"])) for p in invoice["Payments"]), Decimal(0))
        due = Decimal(str(invoice["Total"])) - paid
        invoice |= {"AmountPaid": out(paid), "AmountDue": out(due), "Status": "PAID" if due == 0 else "AUTHORISED"}
        if due == 0:
            invoice["FullyPaidOnDate"] = ms_date(self.now())
        else:
            invoice.pop("FullyPaidOnDate", None)
        self._touch("Invoices", invoice, invoice["InvoiceID"], False)
