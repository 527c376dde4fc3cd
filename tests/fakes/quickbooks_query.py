"""QuickBooks Online's query language, as far as a connector needs it:

    SELECT * | COUNT(*) FROM <Entity> [WHERE <cond> [AND <cond>]...]
        [ORDERBY <field> [ASC|DESC]] [STARTPOSITION n] [MAXRESULTS n]

with =, <, >, <=, >=, LIKE ('%' wildcards) and IN (...), string literals in single quotes
(a quote inside escaped as \\'), conditions joined by AND only (the language has no OR).
Only the fields QuickBooks lets one filter on are accepted (QueryValidationError otherwise);
text compares without regard to case; customers and items that are not Active are left out
unless the query names Active, as QuickBooks does. MAXRESULTS is at most 1000."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from tests.fakes.quickbooks_company import ENTITIES, Company, Fault

QUERYABLE = {
    "Customer": {"Id", "DisplayName", "GivenName", "FamilyName", "CompanyName", "PrimaryEmailAddr", "PrimaryPhone",
                 "Active", "Balance", "MetaData.CreateTime", "MetaData.LastUpdatedTime"},
    "Invoice": {"Id", "DocNumber", "TxnDate", "DueDate", "CustomerRef", "TotalAmt", "Balance",
                "MetaData.CreateTime", "MetaData.LastUpdatedTime"},
    "Item": {"Id", "Name", "Sku", "Type", "Active", "MetaData.CreateTime", "MetaData.LastUpdatedTime"},
    "Payment": {"Id", "CustomerRef", "TxnDate", "TotalAmt", "MetaData.CreateTime", "MetaData.LastUpdatedTime"},
}
TOKEN = re.compile(r"\s*(?:(?P<string>'(?:[^'\\]|\\.)*')|(?P<number>-?\d+(?:\.\d+)?)|(?P<op><=|>=|=|<|>|\(|\)|,|\*)"
                   r"|(?P<word>[A-Za-z_][\w.]*))")
OPS = {"=": lambda a, b: a == b, "<": lambda a, b: a < b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b,
       ">=": lambda a, b: a >= b}


def parser_error(detail: str) -> Fault:
    return Fault("4000", "Error parsing query", f"QueryParserError: {detail}")


def tokens(text: str) -> list[tuple[str, str]]:
    found, at = [], 0
    while at < len(text.rstrip()):
        match = TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise parser_error(f"Encountered an unexpected character at position {at}.")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        at = match.end()
    return found


class Cursor:
    def __init__(self, text: str) -> None:
        self.items, self.at = tokens(text), 0

    def peek(self) -> str:
        return self.items[self.at][1] if self.at < len(self.items) else ""

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.at >= len(self.items):
            raise parser_error(f"Encountered end of query; expected {expected or 'more'}.")
        kind, value = self.items[self.at]
        if expected and value.upper() != expected:
            raise parser_error(f'Encountered "{value}"; expected {expected}.')
        self.at += 1
        return kind, value

    def keyword(self, word: str) -> bool:
        if self.peek().upper() == word:
            self.at += 1
            return True
        return False


def literal(kind: str, value: str) -> Any:
    if kind == "string":
        return value[1:-1].replace("\\'", "'").replace("\\\\", "\\")
    if kind == "number":
        return Decimal(value)
    if kind == "word" and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise parser_error(f'Encountered "{value}"; expected a value.')


def run(company: Company, text: str) -> dict[str, Any]:
    cursor = Cursor(text)
    cursor.take("SELECT")
    count = cursor.keyword("COUNT")
    if count:
        cursor.take("(")
        cursor.take("*")
        cursor.take(")")
    else:
        cursor.take("*")
    cursor.take("FROM")
    named = cursor.take()[1].lower()
    entity = next((e for e in ENTITIES if e.lower() == named), None)
    if entity is None:
        raise parser_error("The entity after FROM is not one this fake keeps (Customer, Invoice, Item, Payment).")
    conditions: list[tuple[str, str, Any]] = []
    if cursor.keyword("WHERE"):
        while True:
            conditions.append(condition(cursor, entity))
            if not cursor.keyword("AND"):
                break
    order: list[tuple[str, bool]] = []
    if cursor.keyword("ORDERBY") or (cursor.keyword("ORDER") and cursor.take("BY")):
        while True:
            name = field_name(cursor, entity)
            descending = cursor.keyword("DESC")
            if not descending:
                cursor.keyword("ASC")
            order.append((name, descending))
            if not cursor.keyword(","):
                break
    start = int(cursor.take()[1]) if cursor.keyword("STARTPOSITION") else 1
    most = int(cursor.take()[1]) if cursor.keyword("MAXRESULTS") else 100
    if cursor.peek():
        raise parser_error(f'Encountered "{cursor.peek()}" after the end of the query.')
    if not 1 <= most <= 1000 or start < 1:
        raise Fault("4001", "Invalid query", "QueryValidationError: MAXRESULTS is 1 to 1000, STARTPOSITION from 1.")
    if entity in ("Customer", "Item") and not any(name == "Active" for name, _, _ in conditions):
        conditions.append(("Active", "=", True))
    rows = [company.view(entity, r) for r in company.tables[entity].values()]
    rows = [r for r in rows if all(holds(value_of(r, name), op, want) for name, op, want in conditions)]
    for name, descending in reversed(order):
        rows.sort(key=lambda r, n=name: sortable(value_of(r, n)), reverse=descending)
    if count:
        return {"totalCount": len(rows)}
    page = rows[start - 1:start - 1 + most]
    return {entity: page, "startPosition": start, "maxResults": len(page)} if page else {}


def field_name(cursor: Cursor, entity: str) -> str:
    kind, name = cursor.take()
    if kind != "word":
        raise parser_error(f'Encountered "{name}"; expected a property name.')
    if name not in QUERYABLE[entity]:
        raise Fault("4001", "Invalid query", f"QueryValidationError: property '{name}' is not queryable")
    return name


def condition(cursor: Cursor, entity: str) -> tuple[str, str, Any]:
    name = field_name(cursor, entity)
    if cursor.keyword("IN"):
        cursor.take("(")
        values = [literal(*cursor.take())]
        while cursor.keyword(","):
            values.append(literal(*cursor.take()))
        cursor.take(")")
        return name, "IN", values
    if cursor.keyword("LIKE"):
        kind, value = cursor.take()
        if kind != "string":
            raise parser_error("LIKE takes a quoted string.")
        pattern = "".join(".*" if part == "%" else re.escape(part) for part in re.split("(%)", literal(kind, value)))
        return name, "LIKE", re.compile(f"^{pattern}$", re.IGNORECASE | re.DOTALL)
    kind, op = cursor.take()
    if op not in OPS:
        raise parser_error(f'Encountered "{op}"; expected an operator.')
    return name, op, literal(*cursor.take())


def value_of(row: dict[str, Any], name: str) -> Any:
    value: Any = row
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, dict):  # references, e-mail and phone: compared by their one value
        value = value.get("value", value.get("Address", value.get("FreeFormNumber")))
    return value


def sortable(value: Any) -> tuple[int, Any]:
    return (0, "") if value is None else (1, value.lower() if isinstance(value, str) else value)


def holds(have: Any, op: str, want: Any) -> bool:
    if have is None:
        return False
    if op == "IN":
        return any(holds(have, "=", w) for w in want)
    if op == "LIKE":
        return bool(want.match(str(have)))
    if isinstance(want, bool) or isinstance(have, bool):
        return OPS[op](bool(have), want) if isinstance(want, bool) else False
    if isinstance(want, Decimal) or isinstance(have, int | float):  # TotalAmt > '100.00' compares as numbers
        try:
            return OPS[op](Decimal(str(have)), Decimal(str(want)))
        except ArithmeticError:
            return False
    return OPS[op](str(have).lower(), str(want).lower())
