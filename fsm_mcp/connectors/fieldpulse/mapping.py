"""FieldPulse payloads to the project's models and back. No FieldPulse field name leaves
this package.

The published spec gives request examples for customers, locations, contacts and comments
and no response schema at all; where it is silent (job and invoice bodies, every answer)
the shapes here are fsm-mcp's reading of FieldPulse, kept in this one module.
"""

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

# FieldPulse's own job statuses (the `status` number) and the project's.
NEW, IN_PROGRESS, PENDING, COMPLETED, CANCELED, ON_THE_WAY = 1, 2, 3, 4, 5, 6
STATUS_OUT = {JobStatus.en_route: ON_THE_WAY, JobStatus.arrived: IN_PROGRESS, JobStatus.working: IN_PROGRESS,
              JobStatus.completed: COMPLETED, JobStatus.canceled: CANCELED, JobStatus.on_hold: PENDING}
SETTLED = {COMPLETED: JobStatus.completed, CANCELED: JobStatus.canceled, PENDING: JobStatus.on_hold}
OPEN = (NEW, IN_PROGRESS, PENDING, ON_THE_WAY)  # a job in these holds its technicians' time
MARK = re.compile(r"^\[fsm-mcp\] (?P<status>[a-z_]+)(?:: (?P<note>.*))?$", re.S)
PHONES = ("phone", "secondary_phone")
EMAILS = ("email", "alt_email", "secondary_email")


def when(value: Any) -> datetime | None:
    """A FieldPulse time: ISO 8601, or 'YYYY-MM-DD HH:MM:SS' (UTC), or epoch seconds."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float) or str(value).isdigit():
        return datetime.fromtimestamp(int(value), UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def stamp(moment: datetime) -> str:
    """Every datetime sent carries its offset."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def epoch(moment: datetime) -> int:
    """The list filters on creation time take UNIX seconds."""
    return int(moment.timestamp())


def money_out(amount: Decimal) -> str:
    """Money in a request: a string with the Decimal's exact digits, as the payment example sends it."""
    return format(amount, "f")


def money(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal("0.00")


def name_of(c: Json) -> str:
    person = " ".join(p for p in (c.get("first_name"), c.get("last_name")) if p)
    return (c.get("display_name") or person or c.get("company_name") or "").strip()


def split_name(name: str) -> tuple[str, str]:
    first, _, last = name.strip().partition(" ")
    return first, last.strip()


def customer(c: Json) -> MirroredCustomer:
    return MirroredCustomer(id=str(c["id"]), name=name_of(c), created=when(c.get("created_at")))


def customer_contacts(c: Json, region: str) -> list[MirroredContact]:
    """The phones and e-mails on the customer record itself, each under a stable id of its field, so a
    number changed in FieldPulse replaces the old one."""
    found = []
    for field in (*PHONES, *EMAILS):
        if not (value := str(c.get(field) or "").strip()):
            continue
        ident = f"customer-{c['id']}-{field}"
        if field in PHONES:
            try:
                found.append(MirroredContact(id=ident, kind="phone", value=parse_phone(value, region).e164, customer_id=str(c["id"])))
            except InvalidPhone:
                log.warning("FieldPulse customer %s: %s is not a phone number we can read; left out of lookups", c["id"], field)
        elif "@" in value:
            found.append(MirroredContact(id=ident, kind="email", value=normalize_email(value), customer_id=str(c["id"])))
    return found


def contact(k: Json, customer_id: str, region: str) -> list[MirroredContact]:
    """A customer-contact record's phone and e-mail, as the numbers of the person it names."""
    found = []
    person = {"person_id": f"fieldpulse-{k['id']}",
              "person": " ".join(str(k.get(f) or "").strip() for f in ("first_name", "last_name")).strip() or None}
    if phone := str(k.get("phone") or "").strip():
        try:
            found.append(MirroredContact(id=f"contact-{k['id']}-phone", kind="phone", value=parse_phone(phone, region).e164,
                                         customer_id=customer_id, **person))
        except InvalidPhone:
            log.warning("FieldPulse contact %s: not a phone number we can read; left out of lookups", k.get("id"))
    if "@" in (email := str(k.get("email") or "")):
        found.append(MirroredContact(id=f"contact-{k['id']}-email", kind="email", value=normalize_email(email),
                                     customer_id=customer_id, **person))
    return found


def location(loc: Json) -> MirroredLocation:
    return MirroredLocation(
        id=str(loc["id"]), customer_id=str(loc["object_id"]),
        address=Address(street=loc.get("address_1") or "", unit=loc.get("address_2") or None, city=loc.get("city") or None,
                        state=loc.get("state") or None, postal_code=loc.get("zip_code") or None),
        created=when(loc.get("created_at")),
    )


def location_out(a: AddressIn, title: str) -> Json:
    missing = [name for name, value in (("city", a.city), ("state", a.state), ("postal_code", a.postal_code)) if not value]
    if missing:
        raise InvalidInput("address", f"FieldPulse needs the {', '.join(missing)} of a new service address; ask the caller")
    return {"title": title, "address_1": a.street, "address_2": a.unit or "", "city": a.city, "state": a.state,
            "zip_code": a.postal_code}


def status(job: Json, marks: list[StatusChange]) -> JobStatus:
    """The job's state in the project's terms. FieldPulse has one in-progress status; whether the
    technician has arrived or is working is what fsm-mcp recorded as a comment (`marks`)."""
    code = int(job.get("status") or NEW)
    if (settled := SETTLED.get(code)) is not None:
        return settled
    if code == ON_THE_WAY:
        return JobStatus.en_route
    if code == IN_PROGRESS:
        last = next((m.status for m in reversed(marks) if m.status in (JobStatus.arrived, JobStatus.working)), None)
        return last or JobStatus.working
    return JobStatus.dispatched if assigned(job) else JobStatus.scheduled


def assigned(job: Json) -> list[str]:
    return sorted(str(u) for u in job.get("assignments") or [])


def marks(comments: list[Json]) -> list[StatusChange]:
    """The status changes fsm-mcp recorded as job comments, oldest first."""
    found = []
    for c in comments:
        if (m := MARK.match(c.get("text") or "")) and m["status"] in JobStatus.__members__ and (at := when(c.get("created_at"))):
            found.append(StatusChange(status=JobStatus(m["status"]), at=at, note=m["note"]))
    return sorted(found, key=lambda s: s.at)


def mark(status: JobStatus, note: str | None) -> str:
    return f"[fsm-mcp] {status.value}" + (f": {note}" if note else "")


PRIORITY = re.compile(r"^\[priority: (?P<p>low|high|emergency)\] ", re.S)


def notes_out(summary: str, priority: Priority) -> str:
    """FieldPulse jobs have no priority: one other than normal leads the job's notes, where staff see it."""
    return summary.strip() if priority == "normal" else f"[priority: {priority}] {summary.strip()}"


def notes_in(notes: str | None) -> tuple[str, Priority]:
    text = notes or ""
    if m := PRIORITY.match(text):
        return text[m.end():], m["p"]  # type: ignore[return-value]
    return text, "normal"
