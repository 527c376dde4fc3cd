"""The `where` and `order` parameters of Xero's list endpoints, as far as a connector needs them:
clauses joined by AND (or &&), each `Field == value`, `!=`, `<`, `>`, `<=`, `>=`, or
`Field.Contains("x")` / `.StartsWith("x")` / `.EndsWith("x")`; values "quoted", Guid("..."),
DateTime(y, m, d), numbers, true/false; fields may be nested (`Contact.ContactID`). Text
compares without regard to case, as Xero's does. OR is refused: Xero recommends the explicit
filters (Statuses, IDs, ContactIDs) instead, and the connector should use them."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

CLAUSE = re.compile(r'^\s*(?P<field>[A-Za-z][\w.]*)\s*(?:(?P<op>==|!=|>=|<=|>|<)\s*(?P<value>.+?)'
                    r'|\.(?P<method>Contains|StartsWith|EndsWith)\((?P<arg>.+)\))\s*$')
MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")
OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b, "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b}


class BadFilter(ValueError):
    pass


def split(text: str) -> list[str]:
    """Split on AND / && outside double quotes."""
    parts, current, quoted, i = [], "", False, 0
    while i < len(text):
        if text[i] == '"':
            quoted = not quoted
        if not quoted and (match := re.match(r"\s+(AND|&&)\s+|\s+(OR|\|\|)\s+", text[i:], re.IGNORECASE)):
            if match.group(2):
                raise BadFilter("OR is not supported here: use the Statuses, IDs or ContactIDs parameters.")
            parts.append(current)
            current, i = "", i + match.end()
            continue
        current += text[i]
        i += 1
    return [*parts, current]


def value(text: str) -> Any:
    text = text.strip()
    if match := re.fullmatch(r'(?:Guid\()?"(.*)"\)?', text, re.DOTALL):
        return match.group(1).lower()
    if match := re.fullmatch(r"DateTime\((\d{4}),\s*(\d{1,2}),\s*(\d{1,2})\)", text):
        return datetime(int(match[1]), int(match[2]), int(match[3]), tzinfo=UTC)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return Decimal(text)
    except InvalidOperation:
        raise BadFilter(f"Cannot read the value {text!r} in the where filter.") from None


def resolve(row: dict[str, Any], field: str) -> Any:
    found: Any = row
    for part in field.split("."):
        found = found.get(part) if isinstance(found, dict) else None
    if isinstance(found, str) and (match := MS_DATE.fullmatch(found)):
        return datetime.fromtimestamp(int(match[1]) / 1000, UTC)
    if isinstance(found, str):
        return found.lower()
    if isinstance(found, int | float) and not isinstance(found, bool):
        return Decimal(str(found))
    return found


def matcher(where: str | None) -> Callable[[dict[str, Any]], bool]:
    if not where or not where.strip():
        return lambda row: True
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for clause in split(where):
        match = CLAUSE.match(clause)
        if match is None:
            raise BadFilter(f"Cannot parse the where clause {clause.strip()!r}.")
        field = match["field"]
        if match["method"]:
            arg, method = str(value(match["arg"])), match["method"]
            tests.append(lambda row, f=field, a=arg, m=method: isinstance(resolve(row, f), str) and (
                a in resolve(row, f) if m == "Contains" else resolve(row, f).startswith(a) if m == "StartsWith"
                else resolve(row, f).endswith(a)))
        else:
            want, op = value(match["value"]), OPS[match["op"]]
            tests.append(lambda row, f=field, w=want, o=op: compare(resolve(row, f), w, o))
    return lambda row: all(test(row) for test in tests)


def compare(have: Any, want: Any, op: Callable[[Any, Any], bool]) -> bool:
    if have is None:
        return op is OPS["!="] and want is not None
    try:
        return op(have, want)
    except TypeError:
        return False


def ordering(order: str | None) -> tuple[str, bool] | None:
    if not order:
        return None
    field, _, direction = order.strip().partition(" ")
    if not re.fullmatch(r"[A-Za-z][\w.]*", field) or direction.strip().upper() not in ("", "ASC", "DESC"):
        raise BadFilter(f"Cannot read the order {order!r}: use 'Field' or 'Field DESC'.")
    return field, direction.strip().upper() == "DESC"
