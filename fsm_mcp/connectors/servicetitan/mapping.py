"""ServiceTitan payloads to the project's models and back. No ServiceTitan field name
leaves this package."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fsm_mcp.directory.mirror import MirroredContact, MirroredCustomer, MirroredLocation
from fsm_mcp.errors import InvalidInput
from fsm_mcp.identity.emails import normalize_email
from fsm_mcp.identity.phones import InvalidPhone, parse_phone
from fsm_mcp.inputs import AddressIn
from fsm_mcp.models import Address, JobStatus, Priority, StatusChange

log = logging.getLogger(__name__)
Json = dict[str, Any]

PRIORITY_OUT: dict[str, str] = {"low": "Low", "normal": "Normal", "high": "High", "emergency": "Urgent"}
PRIORITY_IN: dict[str, Priority] = {v.lower(): k for k, v in PRIORITY_OUT.items()}  # type: ignore[misc]
MARK = re.compile(r"^\[fsm-mcp\] (?P<status>en_route|arrived|working)(?:: (?P<note>.*))?$", re.S)
APP_SET = (JobStatus.en_route, JobStatus.arrived, JobStatus.working)
JOB_SETTLED = {"Completed": JobStatus.completed, "Canceled": JobStatus.canceled, "Hold": JobStatus.on_hold}
VISIT_SETTLED = {"Done": JobStatus.completed, "Canceled": JobStatus.canceled, "Hold": JobStatus.on_hold,
                 "Working": JobStatus.working}
CLOSED_VISITS = ("Done", "Canceled")  # an appointment in these no longer takes a technician's time


def when(value: str | None) -> datetime | None:
    """ServiceTitan's RFC 3339 times; a time without an offset is UTC, as the API documents."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def stamp(moment: datetime) -> str:
    """Every datetime sent carries its offset."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def number(amount: Decimal) -> float:
    """Money in a request: a JSON number with exactly the Decimal's digits (responses carry strings)."""
    value = float(amount)
    if Decimal(repr(value)) != amount.normalize() and Decimal(repr(value)) != amount:
        raise InvalidInput("line_items", f"{amount} cannot be sent to ServiceTitan without rounding; use cents")
    return value


def money(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal("0.00")


def address_in(a: Json) -> Address:
    return Address(street=a.get("street") or "", unit=a.get("unit") or None, city=a.get("city") or None,
                   state=a.get("state") or None, postal_code=a.get("zip") or None, country=a.get("country") or None)


def address_out(a: AddressIn, country: str) -> Json:
    missing = [name for name, value in (("city", a.city), ("state", a.state), ("postal_code", a.postal_code)) if not value]
    if missing:
        raise InvalidInput("address", f"ServiceTitan needs the {', '.join(missing)} of a new service address; ask the caller")
    return {"street": a.street, "unit": a.unit, "city": a.city, "state": a.state, "zip": a.postal_code,
            "country": a.country or country}


def customer(c: Json) -> MirroredCustomer:
    merged = c.get("mergedToId")
    return MirroredCustomer(id=str(c["id"]), name=c.get("name") or "", created=when(c.get("createdOn")),
                            merged_into=str(merged) if merged else None)


def location(loc: Json) -> MirroredLocation:
    return MirroredLocation(id=str(loc["id"]), customer_id=str(loc["customerId"]), address=address_in(loc["address"]),
                            created=when(loc.get("createdOn")))


PERSON_MEMO = "Contact: "  # what a memo we write opens with: the person the number or e-mail is of


def person_memo(name: str) -> str:
    return f"{PERSON_MEMO}{name.strip()}"


def contact(k: Json, region: str, *, customer_id: str | None = None, location_id: str | None = None) -> MirroredContact | None:
    """A phone or e-mail contact in the directory's terms; None for a fax, or a value that does not parse. A memo
    naming a person (as we write it: "Contact: Mary Carter") makes it that person's; other memos are just notes."""
    kind, value = k.get("type"), str(k.get("value") or "")
    owner: Json = {"customer_id": customer_id, "location_id": location_id}
    memo = str(k.get("memo") or "")
    if memo.startswith(PERSON_MEMO) and (person := memo[len(PERSON_MEMO):].strip()):
        owner.update(person=person, person_id=f"servicetitan-{customer_id or location_id}-{' '.join(person.lower().split())}")
    if kind in ("Phone", "MobilePhone"):
        try:
            return MirroredContact(id=str(k["id"]), kind="phone", value=parse_phone(value, region).e164, **owner)
        except InvalidPhone:
            log.warning("ServiceTitan contact %s: not a phone number we can read; left out of lookups", k.get("id"))
            return None
    if kind == "Email" and "@" in value:
        return MirroredContact(id=str(k["id"]), kind="email", value=normalize_email(value), **owner)
    return None


def contacts_out(phones: list[str], emails: list[str]) -> list[Json]:
    return [{"type": "MobilePhone", "value": p} for p in phones] + [{"type": "Email", "value": e} for e in emails]


def status(job: Json, appointment: Json | None, assigned: bool, marks: list[StatusChange]) -> JobStatus:
    """The job's state in the project's terms. En route, arrived and working are set by the technician's
    app; fsm-mcp records the ones an agent reports as notes (`marks`), which count until the app moves on."""
    visit = str((appointment or {}).get("status"))
    if (settled := JOB_SETTLED.get(str(job.get("jobStatus"))) or VISIT_SETTLED.get(visit)) is not None:
        return settled
    base = JobStatus.en_route if visit == "Dispatched" else JobStatus.dispatched if assigned else JobStatus.scheduled
    if marks and base in (JobStatus.dispatched, JobStatus.en_route):
        return marks[-1].status
    return base


def marks(notes: list[Json]) -> list[StatusChange]:
    """The statuses fsm-mcp recorded as notes, oldest first."""
    found = []
    for note in notes:
        if (m := MARK.match(note.get("text") or "")) and (at := when(note.get("createdOn"))):
            found.append(StatusChange(status=JobStatus(m["status"]), at=at, note=m["note"]))
    return sorted(found, key=lambda s: s.at)


def mark(status: JobStatus, note: str | None) -> str:
    return f"[fsm-mcp] {status.value}" + (f": {note}" if note else "")
