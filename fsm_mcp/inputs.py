"""Shapes the agent sends: addresses, new-customer details, invoice lines.

Shared by the tools (which publish them as JSON schema) and the backends (which act on
them), so that one definition serves both.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, Field, field_validator

from fsm_mcp.models import Address, LineKind

_POSTAL_TAIL = re.compile(r"^(?:(?P<state>[A-Za-z]{2,3})\s+)?(?P<postal>\d{5}(?:-\d{4})?|[A-Za-z]\d[A-Za-z] ?\d[A-Za-z]\d|\d{4})$")


class AddressIn(BaseModel):
    street: Annotated[str, Field(min_length=1, max_length=200, description="House number and street, e.g. '123 Oak St Apt 4'")]
    unit: Annotated[str | None, Field(max_length=50, description="Apartment, suite or unit")] = None
    city: Annotated[str | None, Field(max_length=100)] = None
    state: Annotated[str | None, Field(max_length=100, description="State, province or region, as written locally")] = None
    postal_code: Annotated[str | None, Field(max_length=20, description="ZIP or postal code, any country's format")] = None
    country: Annotated[str | None, Field(max_length=2, description="ISO 3166 code; defaults to the business's")] = None

    @field_validator("street")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("street must not be blank; give the house number and street")
        return value.strip()

    def to_address(self) -> Address:
        return Address(**self.model_dump())


def parse_address(value: str | AddressIn) -> AddressIn:
    """Accept "123 Oak St, Springfield, IL 62701" (or "5 Milne Cove, Wellwood, Beaconsfield Upper, VIC, 2602":
    street, second line, town, region, postal code) as well as a structured address."""
    if isinstance(value, AddressIn):
        return value
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if not parts:
        raise ValueError("address is empty; give at least the house number and street")
    street, rest = parts[0], parts[1:]
    state = postal = city = unit = None
    if rest and (m := _POSTAL_TAIL.match(rest[-1])):
        state, postal = m.group("state"), m.group("postal")
        rest = rest[:-1]
    if state is None and len(rest) >= 2 and re.fullmatch(r"[A-Za-z]{2,3}", rest[-1]):
        state = rest.pop()
    if rest:
        city = rest.pop()
    if rest:  # "12 Oak St, Rear Building, Springfield": what stands between street and town is a second line
        unit = ", ".join(rest)[:50]
    return AddressIn(street=street, unit=unit, city=city, state=state, postal_code=postal)


AddressArg = str | AddressIn


class CustomerDetails(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=200, description="The caller's full name as they gave it")]
    phone: Annotated[str | None, Field(max_length=40, description="Any common format; the caller ID is fine")] = None
    email: Annotated[str | None, Field(max_length=254)] = None
    address: Annotated[AddressArg | None, Field(description="Service address, one line or structured")] = None


class LineItemIn(BaseModel):
    description: Annotated[str, Field(min_length=1, max_length=500)]
    quantity: Annotated[Decimal, Field(gt=0, le=10_000, description="Hours for labor, units for material")]
    unit_price: Annotated[Decimal, Field(ge=0, le=1_000_000, description="Price of one unit, e.g. \"129.00\"")]
    kind: Annotated[LineKind, Field(description="labor, material or service")] = "service"
