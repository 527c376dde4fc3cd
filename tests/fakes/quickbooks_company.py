"""One QuickBooks Online company as the fake keeps it: customers, items, invoices and payments,
with the rules the community OpenAPI in ../shared/specs/quickbooks states in its prose as well as
its schemas: a customer needs a DisplayName no other has; an invoice a CustomerRef and at least
one line, each with Amount and DetailType, and QuickBooks computes TotalAmt and Balance; an item
a Name and Type and its account references; a payment a CustomerRef and TotalAmt, its lines
applied to that customer's invoices. Updates carry Id and the latest SyncToken (an older one is
Intuit's 5010 Stale Object Error); a full update clears what it omits, a sparse one (`sparse`)
changes only what it names. Every change is logged for change data capture and webhooks."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

ENTITIES = ("Customer", "Item", "Invoice", "Payment")
CUSTOMER = {"Title": 16, "GivenName": 100, "MiddleName": 100, "FamilyName": 100, "Suffix": 16, "DisplayName": 500,
            "CompanyName": 500, "PrintOnCheckName": 110, "Notes": 2000, "Active": 0, "PrimaryPhone": 0,
            "AlternatePhone": 0, "Mobile": 0, "Fax": 0, "PrimaryEmailAddr": 0, "WebAddr": 0, "BillAddr": 0,
            "ShipAddr": 0, "Taxable": 0, "Job": 0, "ParentRef": 0, "SalesTermRef": 0, "PaymentMethodRef": 0,
            "PreferredDeliveryMethod": 0, "CurrencyRef": 0, "TaxExemptionReasonId": 0}  # writable field -> max length
ITEM = {"Name": 100, "Sku": 100, "Description": 4000, "PurchaseDesc": 4000, "Active": 0, "Type": 0, "UnitPrice": 0,
        "PurchaseCost": 0, "Taxable": 0, "IncomeAccountRef": 0, "ExpenseAccountRef": 0, "AssetAccountRef": 0,
        "TrackQtyOnHand": 0, "QtyOnHand": 0, "InvStartDate": 0, "SalesTaxCodeRef": 0, "ParentRef": 0, "SubItem": 0}
INVOICE = {"DocNumber": 21, "PrivateNote": 4000, "TxnDate": 0, "DueDate": 0, "CustomerRef": 0, "CustomerMemo": 0,
           "BillAddr": 0, "ShipAddr": 0, "BillEmail": 0, "Line": 0, "TxnTaxDetail": 0, "SalesTermRef": 0,
           "CustomField": 0, "EmailStatus": 0, "PrintStatus": 0, "AllowOnlinePayment": 0, "CurrencyRef": 0,
           "AllowOnlineCreditCardPayment": 0, "AllowOnlineACHPayment": 0, "ApplyTaxAfterDiscount": 0,
           "GlobalTaxCalculation": 0, "ShipDate": 0, "TrackingNum": 0, "Deposit": 0, "DepositToAccountRef": 0}
PAYMENT = {"CustomerRef": 0, "TotalAmt": 0, "Line": 0, "TxnDate": 0, "PaymentRefNum": 21, "PrivateNote": 4000,
           "PaymentMethodRef": 0, "DepositToAccountRef": 0, "CurrencyRef": 0, "ProcessPayment": 0}
WRITABLE = {"Customer": CUSTOMER, "Item": ITEM, "Invoice": INVOICE, "Payment": PAYMENT}
LINE_KINDS = ("SalesItemLineDetail", "GroupLineDetail", "DescriptionOnly", "DiscountLineDetail", "SubTotalLineDetail")
ITEM_TYPES = ("Inventory", "NonInventory", "Service", "Group", "Category", "Bundle")
ACCOUNTS = {"1": "Services", "79": "Sales of Product Income", "80": "Cost of Goods Sold", "81": "Inventory Asset",
            "35": "Checking", "4": "Undeposited Funds"}
BUSINESS = "A business validation error has occurred while processing your request"


class Fault(Exception):
    """Intuit's error: {"Fault": {"Error": [{Message, Detail, code, element}], "type": ...}}."""

    def __init__(self, code: str, message: str, detail: str, element: str | None = None, status: int = 400,
                 kind: str = "ValidationFault") -> None:
        super().__init__(detail)
        self.status, self.kind = status, kind
        self.error = {"Message": message, "Detail": detail, "code": code, **({"element": element} if element else {})}


def missing(element: str) -> Fault:
    return Fault("2020", "Required param missing, need to supply the required value for the API",
                 f"Required parameter {element} is missing in the request", element)


def invalid(element: str, detail: str) -> Fault:
    return Fault("2010", "Request has invalid or unsupported property", detail, element)


def business(detail: str, element: str | None = None) -> Fault:
    return Fault("6000", BUSINESS, detail, element)


def money(value: Any, element: str) -> Decimal:
    if isinstance(value, bool):
        raise invalid(element, f"{element} must be a number.")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise invalid(element, f"{element} must be a number.") from None
    if not amount.is_finite():
        raise invalid(element, f"{element} must be a number.")
    return amount


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def num(amount: Decimal) -> float | int:
    value = cents(amount)
    return int(value) if value == value.to_integral_value() else float(value)


def day(value: Any, element: str) -> str:
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise invalid(element, f"{element} must be a date, YYYY-MM-DD.") from None


@dataclass(frozen=True)
class Change:
    entity: str
    id: str
    operation: str  # Create, Update, Delete, Void, Emailed, Merge
    at: datetime


class Company:
    def __init__(self, realm: str, now: Callable[[], datetime]) -> None:
        self.realm, self.now = realm, now
        self.tables: dict[str, dict[str, dict[str, Any]]] = {entity: {} for entity in ENTITIES}
        self.applied: dict[str, dict[str, Decimal]] = {}  # payment id -> invoice id -> amount applied
        self.changes: list[Change] = []
        self.ids = itertools.count(1)
        self.doc_numbers = itertools.count(1001)
        self.create("Item", {"Name": "Services", "Type": "Service", "IncomeAccountRef": {"value": "1"}})
        self.changes.clear()  # the company came with it: nothing changed

    # ----- the four operations every entity has -----
    def read(self, entity: str, ident: str) -> dict[str, Any]:
        row = self.tables[entity].get(ident)
        if row is None:
            raise Fault("610", "Object Not Found", f"Object Not Found : Something you're trying to use has been made "
                        f"inactive or deleted. Check the fields with accounts, customers, items, vendors or employees. "
                        f"({entity} {ident})", status=400)
        return self.view(entity, row)

    def view(self, entity: str, row: dict[str, Any]) -> dict[str, Any]:
        if entity != "Customer":
            return dict(row)
        balance = sum((Decimal(str(i["Balance"])) for i in self.tables["Invoice"].values()
                       if i["CustomerRef"]["value"] == row["Id"]), Decimal(0))
        return {**row, "Balance": num(balance), "BalanceWithJobs": num(balance), "FullyQualifiedName": row["DisplayName"]}

    def create(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        ident = str(next(self.ids))
        fields = self._fields(entity, self._writable(entity, body), ident)
        stamp = self.now().isoformat()
        row = {"Id": ident, "SyncToken": "0", "domain": "QBO", "sparse": False, **fields,
               "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp}}
        self._commit(entity, row, "Create")
        return self.view(entity, row)

    def update(self, entity: str, ident: str | None, body: dict[str, Any], sparse: bool) -> dict[str, Any]:
        ident = ident or body.get("Id")
        if not ident:
            raise missing("Id")
        if body.get("Id") not in (None, ident):
            raise invalid("Id", "The Id in the body differs from the one in the path.")
        current = self.tables[entity].get(str(ident))
        if current is None:
            self.read(entity, str(ident))
        assert current is not None
        self._fresh(current, body)
        given = self._writable(entity, body)
        merged = {**{k: v for k, v in current.items() if k in WRITABLE[entity]}, **given} if sparse else given
        fields = self._fields(entity, merged, current["Id"])
        row = {k: v for k, v in current.items() if k not in WRITABLE[entity]} | fields
        self._commit(entity, row, "Update")
        return self.view(entity, row)

    def void(self, entity: str, ident: str, body: dict[str, Any]) -> dict[str, Any]:
        current = self.tables[entity].get(ident)
        if current is None:
            self.read(entity, ident)
        assert current is not None
        self._fresh(current, body)
        if entity == "Invoice" and any(ident in applied for applied in self.applied.values()):
            raise business("This invoice has payments applied to it; void those payments first.")
        if entity == "Payment":
            self._unapply(ident)
            current["Line"] = []
        if entity == "Invoice":
            current["Line"] = [{**line, "Amount": 0} for line in current["Line"]]
            current["TxnTaxDetail"] = {**current.get("TxnTaxDetail", {}), "TotalTax": 0}
            current["Balance"] = 0
        current["TotalAmt"], current["PrivateNote"] = 0, "Voided"
        self._commit(entity, current, "Void")
        return self.view(entity, current)

    def sent(self, ident: str, to: str | None) -> dict[str, Any]:
        invoice = self.tables["Invoice"].get(ident)
        if invoice is None:
            self.read("Invoice", ident)
        assert invoice is not None
        address = to or (invoice.get("BillEmail") or {}).get("Address")
        if not address:
            raise business("The invoice has no BillEmail and no sendTo was given.", "BillEmail")
        check_email(address, "sendTo")
        invoice["EmailStatus"], invoice["BillEmail"] = "EmailSent", {"Address": address}
        invoice["DeliveryInfo"] = {"DeliveryType": "Email", "DeliveryTime": self.now().isoformat()}
        self._commit("Invoice", invoice, "Emailed")
        return self.view("Invoice", invoice)

    def _commit(self, entity: str, row: dict[str, Any], operation: str) -> None:
        if operation != "Create":
            row["SyncToken"] = str(int(row["SyncToken"]) + 1)
            row["MetaData"] = {**row["MetaData"], "LastUpdatedTime": self.now().isoformat()}
        self.tables[entity][row["Id"]] = row
        self.changes.append(Change(entity, row["Id"], operation, self.now()))

    @staticmethod
    def _fresh(current: dict[str, Any], body: dict[str, Any]) -> None:
        if body.get("SyncToken") in (None, ""):
            raise missing("SyncToken")
        if str(body["SyncToken"]) != current["SyncToken"]:
            raise Fault("5010", "Stale Object Error", "Stale Object Error : You and another user were working on "
                        "this at the same time. They finished before you did, so your work was not saved.", "SyncToken")

    @staticmethod
    def _writable(entity: str, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise invalid(entity, f"The request body must be a {entity} object.")
        lengths = WRITABLE[entity]
        for name, longest in lengths.items():
            if longest and isinstance(body.get(name), str) and len(body[name]) > longest:
                raise Fault("2050", "String length is either shorter or longer than supported by specification",
                            f"{name} may be at most {longest} characters.", name)
        return {k: v for k, v in body.items() if k in lengths and v is not None}

    def _fields(self, entity: str, fields: dict[str, Any], ident: str) -> dict[str, Any]:
        return {"Customer": self._customer, "Item": self._item, "Invoice": self._invoice,
                "Payment": self._payment}[entity](fields, ident)

    # ----- what each entity requires -----
    def _customer(self, fields: dict[str, Any], ident: str) -> dict[str, Any]:
        name = str(fields.get("DisplayName") or "").strip()
        if not name:
            raise missing("DisplayName")
        if any(c["DisplayName"].lower() == name.lower() and c["Id"] != ident for c in self.tables["Customer"].values()):
            raise Fault("6240", "Duplicate Name Exists Error", "The name supplied already exists. : Another customer, "
                        "vendor or employee is already using this name. Please use a different name.", "DisplayName")
        if email := (fields.get("PrimaryEmailAddr") or {}).get("Address"):
            check_email(email, "PrimaryEmailAddr")
        for phone in ("PrimaryPhone", "AlternatePhone", "Mobile", "Fax"):
            if len(str((fields.get(phone) or {}).get("FreeFormNumber") or "")) > 30:
                raise invalid(phone, f"{phone}.FreeFormNumber may be at most 30 characters.")
        return {**fields, "DisplayName": name, "Active": fields.get("Active", True) is not False}

    def _item(self, fields: dict[str, Any], ident: str) -> dict[str, Any]:
        for need in ("Name", "Type"):
            if not fields.get(need):
                raise missing(need)
        if fields["Type"] not in ITEM_TYPES:
            raise invalid("Type", f"Type must be one of {', '.join(ITEM_TYPES)}.")
        if any(i["Name"].lower() == str(fields["Name"]).lower() and i["Id"] != ident for i in self.tables["Item"].values()):
            raise Fault("6240", "Duplicate Name Exists Error", "The name supplied already exists.", "Name")
        refs = ("IncomeAccountRef", "ExpenseAccountRef", "AssetAccountRef") if fields["Type"] == "Inventory" \
            else ("IncomeAccountRef",) if fields["Type"] in ("Service", "NonInventory") else ()
        for ref in refs:
            if not (fields.get(ref) or {}).get("value"):
                raise missing(ref)
            if fields[ref]["value"] not in ACCOUNTS:
                raise reference(ref, fields[ref]["value"])
        if fields["Type"] == "Inventory" and fields.get("QtyOnHand") is None:
            raise missing("QtyOnHand")
        return {**fields, "Active": fields.get("Active", True) is not False, "FullyQualifiedName": fields["Name"]}

    def _invoice(self, fields: dict[str, Any], ident: str) -> dict[str, Any]:
        customer = self._customer_ref(fields)
        lines = fields.get("Line")
        if not isinstance(lines, list) or not lines:
            raise missing("Line")
        stored, subtotal, discount = self._lines(lines)
        tax = money((fields.get("TxnTaxDetail") or {}).get("TotalTax", 0), "TxnTaxDetail.TotalTax")
        if tax < 0:
            raise invalid("TxnTaxDetail.TotalTax", "TotalTax may not be negative.")
        total = cents(subtotal - discount + tax)
        if total < 0:
            raise business("The discount is larger than the invoice's lines.", "Line")
        paid = sum((a.get(ident, Decimal(0)) for a in self.applied.values()), Decimal(0))
        if total < paid:
            raise business("The invoice's total would be less than the payments already applied to it.", "Line")
        txn = day(fields.get("TxnDate") or self.now().date().isoformat(), "TxnDate")
        if email := (fields.get("BillEmail") or {}).get("Address"):
            check_email(email, "BillEmail")
        if len(fields.get("CustomField") or []) > 3:
            raise invalid("CustomField", "An invoice has at most 3 custom fields.")
        return {**fields, "CustomerRef": {"value": customer["Id"], "name": customer["DisplayName"]}, "Line": stored,
                "DocNumber": fields.get("DocNumber") or str(next(self.doc_numbers)), "TxnDate": txn,
                "DueDate": day(fields.get("DueDate") or (date.fromisoformat(txn) + timedelta(days=30)).isoformat(), "DueDate"),
                "TxnTaxDetail": {**(fields.get("TxnTaxDetail") or {}), "TotalTax": num(tax)},
                "TotalAmt": num(total), "Balance": num(total - paid), "EmailStatus": fields.get("EmailStatus") or "NotSet",
                "LinkedTxn": [{"TxnId": p, "TxnType": "Payment"} for p, a in self.applied.items() if ident in a]}

    def _lines(self, lines: list[Any]) -> tuple[list[dict[str, Any]], Decimal, Decimal]:
        stored: list[dict[str, Any]] = []
        subtotal = discount = Decimal(0)
        for line in lines:
            kind = line.get("DetailType") if isinstance(line, dict) else None
            if not kind:
                raise missing("Line.DetailType")
            if kind not in LINE_KINDS:
                raise invalid("Line.DetailType", f"DetailType must be one of {', '.join(LINE_KINDS)}.")
            if kind == "SubTotalLineDetail":
                continue  # QuickBooks works the subtotal out itself
            if kind == "GroupLineDetail":
                raise business("Group lines are not supported by this fake.", "Line.GroupLineDetail")
            if line.get("Amount") is None:
                raise missing("Line.Amount")
            amount = cents(money(line["Amount"], "Line.Amount"))
            entry = {**line, "Id": str(len(stored) + 1), "LineNum": len(stored) + 1, "Amount": num(amount)}
            if kind == "SalesItemLineDetail":
                detail = dict(line.get("SalesItemLineDetail") or {})
                item_id = str((detail.get("ItemRef") or {}).get("value") or "1")
                item = self.tables["Item"].get(item_id)
                if item is None or not item["Active"]:
                    raise reference("Line.SalesItemLineDetail.ItemRef", item_id)
                if detail.get("Qty") is not None and detail.get("UnitPrice") is not None:
                    expected = cents(money(detail["Qty"], "Qty") * money(detail["UnitPrice"], "UnitPrice"))
                    if expected != amount:
                        raise Fault("6070", "Amount calculation incorrect in the request",
                                    f"Amount is not equal to UnitPrice * Qty. Supplied value:{amount}", "Line.Amount")
                entry["SalesItemLineDetail"] = {**detail, "ItemRef": {"value": item_id, "name": item["Name"]}}
                subtotal += amount
            elif kind == "DiscountLineDetail":
                discount += amount
            stored.append(entry)
        stored.append({"Amount": num(subtotal), "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
        return stored, subtotal, discount

    def _payment(self, fields: dict[str, Any], ident: str) -> dict[str, Any]:
        customer = self._customer_ref(fields)
        if fields.get("TotalAmt") is None:
            raise missing("TotalAmt")
        total = cents(money(fields["TotalAmt"], "TotalAmt"))
        if total < 0:
            raise invalid("TotalAmt", "TotalAmt may not be negative.")
        wanted: dict[str, Decimal] = {}
        lines = fields.get("Line") or []
        for line in lines:
            linked = (line.get("LinkedTxn") or [None])[0] if isinstance(line, dict) else None
            if line.get("Amount") is None:
                raise missing("Line.Amount")
            if not linked or not linked.get("TxnId"):
                raise missing("Line.LinkedTxn")
            if linked.get("TxnType") != "Invoice":
                raise business("This fake applies payments to invoices only.", "Line.LinkedTxn.TxnType")
            wanted[str(linked["TxnId"])] = wanted.get(str(linked["TxnId"]), Decimal(0)) + cents(money(line["Amount"], "Line.Amount"))
        txn = day(fields.get("TxnDate") or self.now().date().isoformat(), "TxnDate")
        if sum(wanted.values(), Decimal(0)) > total:
            raise business("The amounts applied are more than the payment's TotalAmt.", "Line.Amount")
        for invoice_id, amount in wanted.items():
            invoice = self.tables["Invoice"].get(invoice_id)
            if invoice is None:
                raise reference("Line.LinkedTxn.TxnId", invoice_id)
            if invoice["CustomerRef"]["value"] != customer["Id"]:
                raise business(f"Invoice {invoice_id} belongs to another customer.", "Line.LinkedTxn.TxnId")
            open_before = Decimal(str(invoice["Balance"])) + self.applied.get(ident, {}).get(invoice_id, Decimal(0))
            if amount <= 0 or amount > open_before:
                raise business(f"The amount applied to invoice {invoice_id} must be more than 0 and at most its "
                               f"balance, {open_before}.", "Line.Amount")
        self._unapply(ident)
        self.applied[ident] = wanted
        for invoice_id in wanted:
            self._rebalance(invoice_id)
        return {**fields, "CustomerRef": {"value": customer["Id"], "name": customer["DisplayName"]},
                "TotalAmt": num(total), "UnappliedAmt": num(total - sum(wanted.values(), Decimal(0))),
                "TxnDate": txn,
                "Line": [{"Amount": num(a), "LinkedTxn": [{"TxnId": i, "TxnType": "Invoice"}]} for i, a in wanted.items()]}

    def _unapply(self, payment_id: str) -> None:
        for invoice_id in self.applied.pop(payment_id, {}):
            self._rebalance(invoice_id)

    def _rebalance(self, invoice_id: str) -> None:
        invoice = self.tables["Invoice"][invoice_id]
        paid = sum((a.get(invoice_id, Decimal(0)) for a in self.applied.values()), Decimal(0))
        invoice["Balance"] = num(Decimal(str(invoice["TotalAmt"])) - paid)
        invoice["LinkedTxn"] = [{"TxnId": p, "TxnType": "Payment"} for p, a in self.applied.items() if invoice_id in a]
        self._commit("Invoice", invoice, "Update")

    def _customer_ref(self, fields: dict[str, Any]) -> dict[str, Any]:
        ref = (fields.get("CustomerRef") or {}).get("value")
        if not ref:
            raise missing("CustomerRef")
        customer = self.tables["Customer"].get(str(ref))
        if customer is None or not customer["Active"]:
            raise reference("CustomerRef", str(ref))
        return customer

    # ----- change data capture -----
    def changed_since(self, entities: list[str], since: datetime, most: int) -> dict[str, list[dict[str, Any]]]:
        """The current state of each entity changed at or after `since`, oldest change first, at most `most` in all."""
        latest: dict[tuple[str, str], datetime] = {}
        for change in self.changes:
            if change.entity in entities and change.at >= since:
                latest[(change.entity, change.id)] = change.at
        found: dict[str, list[dict[str, Any]]] = {entity: [] for entity in entities}
        for (entity, ident), _ in sorted(latest.items(), key=lambda kv: kv[1])[:most]:
            found[entity].append(self.view(entity, self.tables[entity][ident]))
        return found


def reference(element: str, ident: str) -> Fault:
    return Fault("2500", "Invalid Reference Id", f"Invalid Reference Id : {element} {ident} does not exist or is inactive.",
                 element)


def check_email(address: str, element: str) -> None:
    local, _, domain = address.partition("@")
    if not local or "." not in domain or len(address) > 100:
        raise invalid(element, f"{element} is not a valid e-mail address.")
