"""Housecall Pro payloads to the project's models and back. No Housecall Pro field name
leaves this package.

Money is integer cents both ways. Times are ISO 8601; one without an offset is the
company's local time (the schedule's examples carry none), read in the business's zone;
every time sent carries its offset.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fsm_mcp.directory.mirror import MirroredContact, MirroredCustomer, MirroredLocation
from fsm_mcp.errors import InvalidInput
from fsm_mcp.identity.emails import normalize_email
from fsm_mcp.identity.phones import InvalidPhone, parse_phone
from fsm_mcp.inputs import AddressIn
from fsm_mcp.models import Address, JobStatus, Priority, StatusChange

log = logging.getLogger(__name__)
Json = dict[str, Any]

PHONES = ("mobile_number", "home_number", "work_number")  # a customer holds three numbers and one e-mail
EMAIL = "email"
# Housecall Pro's work statuses, and the project's where they settle it.
NEEDS_SCHEDULING, SCHEDULED, IN_PROGRESS = "needs scheduling", "scheduled", "in progress"
SETTLED = {"complete rated": JobStatus.completed, "complete unrated": JobStatus.completed,
           "user canceled": JobStatus.canceled, "pro canceled": JobStatus.canceled}
OPEN_FILTER = ("unscheduled", "scheduled", "in_progress")  # GET /jobs's work_status values of open jobs
BUSY_FILTER = ("scheduled", "in_progress")  # ... and of jobs that hold their employees' time
APP_SET = (JobStatus.en_route, JobStatus.arrived, JobStatus.working)  # set in the app; fsm-mcp records them as notes
MARK = re.compile(r"^\[fsm-mcp\] (?P<status>[a-z_]+) (?P<at>\S+)(?:: (?P<note>.*))?$", re.S)
REF = re.compile(r"\n*\[fsm-mcp ref (?P<ref>[0-9a-f]{16})\]\s*$")
PRIORITY = re.compile(r"^\[priority: (?P<p>low|high|emergency)\] ", re.S)
KIND_OUT = {"labor": "labor", "service": "labor", "material": "materials"}
DISCOUNT = "fixed discount"


def when(value: Any, zone: tzinfo) -> datetime | None:
    if value in (None, ""):
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def cents_out(amount: Decimal, field: str) -> int:
    """Money in a request: whole cents, refusing what cannot be sent without rounding."""
    hundredths = amount * 100
    if hundredths != hundredths.to_integral_value():
        raise InvalidInput(field, f"{amount} has fractions of a cent, which Housecall Pro cannot take; round it to cents")
    return int(hundredths)


def money(value: Any) -> Decimal:
    """Integer cents as a Decimal amount."""
    return (Decimal(str(value or 0)) / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)


def quantity_out(quantity: Decimal, field: str) -> float:
    if quantity != quantity.quantize(Decimal("0.01")):
        raise InvalidInput(field, f"{quantity}: Housecall Pro takes quantities to two decimal places; round it")
    return float(quantity)


def ref(key: str) -> str:
    """What a job carries of the idempotency key that booked it: a digest, so the key itself never leaves."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


# ----- customers -----
def name_of(c: Json) -> str:
    person = " ".join(str(p) for p in (c.get("first_name"), c.get("last_name")) if p)
    return (person or c.get("company") or "").strip()


def split_name(name: str) -> tuple[str, str]:
    first, _, last = name.strip().partition(" ")
    return first, last.strip()


def customer(c: Json, zone: tzinfo) -> MirroredCustomer:
    return MirroredCustomer(id=str(c["id"]), name=name_of(c), created=when(c.get("created_at"), zone))


def customer_contacts(c: Json, region: str) -> list[MirroredContact]:
    """The numbers and e-mail on the record, each under a stable id of its field, so a number changed in
    Housecall Pro replaces the old one."""
    found = []
    for field in (*PHONES, EMAIL):
        if not (value := str(c.get(field) or "").strip()):
            continue
        ident = f"customer-{c['id']}-{field}"
        if field != EMAIL:
            try:
                found.append(MirroredContact(id=ident, kind="phone", value=parse_phone(value, region).e164,
                                             customer_id=str(c["id"])))
            except InvalidPhone:
                log.warning("Housecall Pro customer %s: %s is not a phone number we can read; left out of lookups",
                            c["id"], field)
        elif "@" in value:
            found.append(MirroredContact(id=ident, kind="email", value=normalize_email(value), customer_id=str(c["id"])))
    return found


def address_in(a: Json) -> Address:
    return Address(street=a.get("street") or "", unit=a.get("street_line_2") or None, city=a.get("city") or None,
                   state=a.get("state") or None, postal_code=a.get("zip") or None, country=a.get("country") or None)


def locations(c: Json, zone: tzinfo) -> list[MirroredLocation]:
    """A customer's service addresses (a billing address is not a place to send anyone)."""
    return [MirroredLocation(id=str(a["id"]), customer_id=str(c["id"]), address=address_in(a),
                             created=when(a.get("created_at"), zone) or when(c.get("created_at"), zone))
            for a in c.get("addresses") or [] if a.get("type") != "billing" and a.get("street")]


def address_out(a: AddressIn, country: str) -> Json:
    """An address to create: the spec requires street, city, state, zip and country."""
    missing = [name for name, value in (("city", a.city), ("state", a.state), ("postal_code", a.postal_code)) if not value]
    if missing:
        raise InvalidInput("address", f"Housecall Pro needs the {', '.join(missing)} of a new service address; ask the caller")
    return {"street": a.street, **({"street_line_2": a.unit} if a.unit else {}), "city": a.city, "state": a.state,
            "zip": a.postal_code, "country": a.country or country}


# ----- jobs -----
def assigned(job: Json) -> list[str]:
    return sorted(str(e["id"]) for e in job.get("assigned_employees") or [] if e.get("id"))


def customer_of(job: Json) -> str:
    return str((job.get("customer") or {}).get("id") or job.get("customer_id") or "")


def place_of(job: Json) -> str:
    return str((job.get("address") or {}).get("id") or job.get("address_id") or "")


def job_type(job: Json) -> str:
    return str(((job.get("job_fields") or {}).get("job_type") or {}).get("name") or "")


def window(job: Json, zone: tzinfo) -> tuple[datetime, datetime] | None:
    schedule = job.get("schedule") or {}
    start, end = when(schedule.get("scheduled_start"), zone), when(schedule.get("scheduled_end"), zone)
    return (start, end or start) if start else None


def is_open(job: Json) -> bool:
    return job.get("work_status") not in SETTLED and not job.get("canceled_at") and not job.get("deleted_at")


def notes_out(summary: str, priority: Priority, key: str | None) -> str:
    """A job's first note: its summary, led by a priority other than normal (Housecall Pro's jobs have
    none), and ending with the reference of the key that booked it."""
    text = summary.strip() if priority == "normal" else f"[priority: {priority}] {summary.strip()}"
    return text + (f"\n\n[fsm-mcp ref {ref(key)}]" if key else "")


def summary_in(job: Json) -> tuple[str, Priority]:
    first = next((str(n.get("content") or "") for n in job.get("notes") or [] if not MARK.match(n.get("content") or "")), "")
    text = REF.sub("", first)
    if m := PRIORITY.match(text):
        return text[m.end():], m["p"]  # type: ignore[return-value]
    return text, "normal"


def carries(job: Json, key: str) -> bool:
    wanted = ref(key)
    return any((m := REF.search(n.get("content") or "")) and m["ref"] == wanted for n in job.get("notes") or [])


def mark(status: JobStatus, at: datetime, note: str | None) -> str:
    return f"[fsm-mcp] {status.value} {stamp(at)}" + (f": {note}" if note else "")


def marks(job: Json, zone: tzinfo) -> list[StatusChange]:
    """The status changes fsm-mcp recorded as job notes, oldest first."""
    found = []
    for n in job.get("notes") or []:
        if (m := MARK.match(n.get("content") or "")) and m["status"] in JobStatus.__members__:
            try:
                at = when(m["at"], zone)
            except ValueError:
                continue
            if at is not None:
                found.append(StatusChange(status=JobStatus(m["status"]), at=at, note=m["note"]))
    return sorted(found, key=lambda s: s.at)


def timestamps(job: Json, zone: tzinfo) -> list[StatusChange]:
    """What the technician's app recorded: on my way, started, completed."""
    stamps = job.get("work_timestamps") or {}
    found = [StatusChange(status=s, at=at) for field, s in (("on_my_way_at", JobStatus.en_route),
                                                             ("started_at", JobStatus.working),
                                                             ("completed_at", JobStatus.completed))
             if (at := when(stamps.get(field), zone))]
    return sorted(found, key=lambda s: s.at)


def status(job: Json, recorded: list[StatusChange], zone: tzinfo) -> JobStatus:
    """The job's state in the project's terms. Housecall Pro settles completed and canceled and knows
    unscheduled (on hold here) and in progress; en route, arrived and working are what its app or
    fsm-mcp (as notes, `recorded`) says of an open job."""
    code = str(job.get("work_status") or "")
    if (settled := SETTLED.get(code)) is not None or job.get("canceled_at") or job.get("deleted_at"):
        return settled or JobStatus.canceled
    if code == NEEDS_SCHEDULING:
        return JobStatus.on_hold
    last = recorded[-1].status if recorded else None
    if code == IN_PROGRESS:
        return JobStatus.arrived if last == JobStatus.arrived else JobStatus.working
    base = JobStatus.dispatched if assigned(job) else JobStatus.scheduled
    if (job.get("work_timestamps") or {}).get("on_my_way_at"):
        base = JobStatus.en_route
    return last if last in APP_SET else base


# ----- line items and invoices -----
def line_out(description: str, kind: str, quantity: Decimal, unit_price: Decimal, taxable: bool, at: int) -> Json:
    return {"name": description, "description": description, "kind": KIND_OUT.get(kind, "labor"),
            "quantity": quantity_out(quantity, f"line_items[{at}].quantity"),
            "unit_price": cents_out(unit_price, f"line_items[{at}].unit_price"), "unit_cost": 0, "taxable": taxable}


def discount_out(amount: Decimal) -> Json:
    return {"name": "Discount", "description": "Discount", "kind": DISCOUNT, "quantity": 1.0,
            "unit_price": cents_out(amount, "discount"), "unit_cost": 0, "taxable": False}


def invoice_state(value: Any) -> str:
    text = str(value or "").lower()
    return "paid" if text == "paid" else "void" if text in ("voided", "canceled", "uncollectible") else "open"
