"""Shapes the agent sends: addresses, new-customer details, invoice lines, and the text, name, phone and date
types every tool's arguments are made of.

Shared by the tools (which publish them as JSON schema) and the backends (which act on
them), so that one definition serves both; at the end, what a door builds from them for a backend
(`BookingRequest`, `JobFilter`). Every object refuses keys it does not know, at
every depth: an agent that sends `vip_discount` learns at once that it does nothing.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from fsm_mcp.models import Address, JobStatus, LineKind, Priority

_POSTAL_TAIL = re.compile(r"^(?:(?P<state>[A-Za-z]{2,3})\s+)?(?P<postal>\d{5}(?:-\d{4})?|[A-Za-z]\d[A-Za-z] ?\d[A-Za-z]\d|\d{4})$")

# C0 and C1 controls (ESC among them, so no ANSI sequence gets through), DEL, and the bidirectional overrides and
# isolates that make a name or a note read differently on a screen from what it holds.
_BIDI = "\u202a-\u202e\u2066-\u2069"
_NOT_IN_A_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
_NOT_IN_TEXT = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")  # tab and newline are fine in a note
EARLIEST_YEAR, LATEST_YEAR = 1900, 2999  # far enough for any record, well inside what date arithmetic can reach


def _refuse(match: re.Match[str] | None) -> None:
    if match is None:
        return
    char = match.group()
    if char in "\n\r":
        raise ValueError("must be on one line; leave out the line break")
    kind = "a bidirectional control" if char >= "\u202a" else "a control character"
    raise ValueError(f"holds {kind} (U+{ord(char):04X}) at position {match.start() + 1}; send plain text without it")


def _one_line(value: str) -> str:
    _refuse(_NOT_IN_A_LINE.search(value))
    return value


def _lines(value: str) -> str:
    value = value.replace("\r\n", "\n")
    _refuse(_NOT_IN_TEXT.search(value))
    return value


def _a_name(value: str) -> str:
    value = value.strip()
    if not any(unicodedata.category(c).startswith("L") for c in value):
        raise ValueError("ask the caller for their name")
    return value


def _digits_as_text(value: Any) -> Any:
    """A phone number sent as a JSON number (the MCP Inspector sends `caller_phone=2175550166` so) is its digits."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _in_years(value: date) -> date:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"year {value.year} is out of range; give a date between {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value


# One line of text a person typed or said: names, addresses, job types, skills, reasons, invoice lines.
Line = Annotated[str, AfterValidator(_one_line)]
# Text that may run over several lines (tab and newline allowed): notes and summaries.
Text = Annotated[str, AfterValidator(_lines)]
# A person's name: trimmed, and holding at least one letter ("", "?" and "-" are not names).
PersonName = Annotated[str, AfterValidator(_one_line), AfterValidator(_a_name)]
# A phone number in any common format; digits sent as a JSON number are taken as text.
PhoneText = Annotated[str, BeforeValidator(_digits_as_text), AfterValidator(_one_line)]
Day = Annotated[date, AfterValidator(_in_years)]
Moment = Annotated[datetime, AfterValidator(_in_years)]
_CLOSED = ConfigDict(extra="forbid")


class AddressIn(BaseModel):
    model_config = _CLOSED

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


# An address as an agent sends it: every part one line of plain text. (No docstring: it would be published as the
# schema's description.) An import builds `AddressIn` from a business's own records, whose streets may run over lines.
class AgentAddress(AddressIn):

    @field_validator("*")
    @classmethod
    def _plain(cls, value: Any) -> Any:
        return _one_line(value) if isinstance(value, str) else value


AddressArg = Line | AgentAddress


class CustomerDetails(BaseModel):
    model_config = _CLOSED

    name: Annotated[PersonName, Field(max_length=200, description="The caller's full name as they gave it")]
    phone: Annotated[PhoneText | None, Field(max_length=40, description="Any common format; the caller ID is fine")] = None
    email: Annotated[Line | None, Field(max_length=254)] = None
    address: Annotated[AddressArg | None, Field(description="Service address, one line or structured")] = None


class LineItemIn(BaseModel):
    model_config = _CLOSED

    description: Annotated[Line, Field(min_length=1, max_length=500)]
    quantity: Annotated[Decimal, Field(gt=0, le=10_000, description="Hours for labor, units for material")]
    unit_price: Annotated[Decimal, Field(ge=0, le=1_000_000, description="Price of one unit, e.g. \"129.00\"")]
    kind: Annotated[LineKind, Field(description="labor, material or service")] = "service"


# What the doors build from those shapes for a backend.


class BookingRequest(BaseModel):
    """A booking, validated by its door: the request model of the booking service, and what its idempotency
    key is bound to (every field, see `request_hash`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    customer_id: str | None
    customer: CustomerDetails | None
    address: AddressIn | None
    job_type: str
    summary: str
    priority: Priority
    window: tuple[datetime, datetime]  # aware, in the business's zone
    technician_id: str | None
    allow_duplicate: bool
    new_customer: bool
    caller_phone: str | None = None  # E.164; learned onto an existing customer's record when it is not there


@dataclass(frozen=True, slots=True)
class JobFilter:
    date_from: datetime | None = None
    date_to: datetime | None = None
    statuses: tuple[JobStatus, ...] = ()
    technician_id: str | None = None
    customer_id: str | None = None
    limit: int = 50
