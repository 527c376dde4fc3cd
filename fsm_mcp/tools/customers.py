"""Recognising callers and reading customer records."""

from decimal import Decimal
from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from fsm_mcp.access.callers import needs
from fsm_mcp.errors import InvalidInput
from fsm_mcp.identity.query import caller_profile
from fsm_mcp.inputs import AddressArg, Line, PhoneText, parse_address
from fsm_mcp.models import UNTRUSTED, Contact, Equipment, untrusted
from fsm_mcp.results import CustomerProfile, RecentJob
from fsm_mcp.services import reads
from fsm_mcp.tools._kit import READ, agent_errors, business
from fsm_mcp.tools._schema import omit_empty


class CustomerMatch(BaseModel):
    customer_id: str
    name: str
    score: int = Field(ge=0, le=100)
    confidence: Literal["exact", "likely", "possible"]
    reasons: list[str] = Field(description="Why this record matched, in words a person can check")
    level: Literal["contact", "account"] = Field(
        default="contact", description="contact: the caller is this record's person; account: another person of the "
        "account (a household member at its house, a name changed by marriage): confirm they call for it")


class Place(BaseModel):
    location_id: str
    address: str = untrusted(..., about="On one line, as you would say it")
    access_notes: str | None = omit_empty(description=UNTRUSTED, json_schema_extra={"x-untrusted": True})
    equipment: list[str] = omit_empty([], description='e.g. "Carrier 59TP6 furnace, installed 2014", with its notes. '
                                      f'{UNTRUSTED}', json_schema_extra={"x-untrusted": True})


class CallerCard(BaseModel):
    """The top match's profile in the shape a call needs: lines to say, ids to act on.
    get_customer has the same record with structured addresses and equipment."""

    customer_id: str
    name: str
    phones: list[str] = Field(description="E.164, with ' x123' for an extension")
    emails: list[str]
    notes: str | None = omit_empty(description=UNTRUSTED, json_schema_extra={"x-untrusted": True})
    locations: list[Place] = Field(description="Service addresses; create_job takes one as `address`")
    contacts: list[Contact] = omit_empty([], description="The people who call for this account")
    recent_jobs: list[RecentJob] = Field(description="Most recent first")
    open_balance: Decimal

    @classmethod
    def of(cls, profile: CustomerProfile) -> "CallerCard":
        c = profile.customer
        return cls(
            customer_id=c.customer_id, name=c.name, emails=c.emails, notes=c.notes,
            phones=[p.number + (f" x{p.extension}" if p.extension else "") for p in c.phones],
            locations=[Place(location_id=loc.location_id, address=loc.address.one_line(), access_notes=loc.access_notes,
                             equipment=[_equipment_line(e) for e in loc.equipment]) for loc in c.locations],
            contacts=c.contacts, recent_jobs=profile.recent_jobs, open_balance=profile.open_balance,
        )


def _equipment_line(e: Equipment) -> str:
    line = " ".join(part for part in (e.make, e.model, e.kind) if part)
    line += f", installed {e.installed}" if e.installed else ""
    return line + (f" ({e.notes})" if e.notes else "")


class CallerContact(BaseModel):
    """Who of the account the caller is: the account says who is billed and served, its contacts who call."""

    status: Literal["known", "new"] = Field(
        description="known: one of the account's contacts; new: probably a new contact of the account (a household "
        "member, a tenant, someone at the office): confirm they call for it; create_job then adds them")
    contact_id: str | None = omit_empty(description="The known contact's id")
    name: str = Field(description="The contact's name, or the name the caller gave")
    role: str | None = omit_empty(description="owner, spouse, tenant, property_manager, office...")
    reasons: list[str]


class LookupResult(BaseModel):
    matches: list[CustomerMatch] = Field(description="Best first")
    customer: CallerCard | None = omit_empty(
        description="Profile of the top match, when it is exact or likely and no other is close"
    )
    caller: CallerContact | None = omit_empty(
        description="Which contact of that customer's account is calling, when the name, number or e-mail says"
    )
    next_step: str


_NEXT = {
    "exact": "This is the caller. Greet them by name and use customer_id for bookings.",
    "likely": "Almost certainly the caller; confirm with one question (e.g. the service address), then use customer_id.",
    "possible": "Not certain. Ask the caller to confirm their name or address before using any customer_id.",
    None: "No customer on file matches. Collect name, phone and service address; create_job with `customer` adds them.",
}
_NEW_CONTACT = (" The caller is not yet a contact of this account: ask whether they call for it (\"I see the {account} "
                "account at {place}; are you calling for that address?\"), then book with create_job and the caller's "
                "details, which adds them as a contact.")


def register(mcp: MCPServer) -> None:
    @mcp.tool(annotations=READ, meta=needs("customers:read"))
    @agent_errors
    async def lookup_customer(
        ctx: Context,
        phone: Annotated[PhoneText | None, Field(max_length=40, description="Caller ID or a number the caller gave, any format")] = None,
        name: Annotated[Line | None, Field(max_length=200, description="Name as the caller said it; nicknames are fine")] = None,
        email: Annotated[Line | None, Field(max_length=254)] = None,
        address: Annotated[AddressArg | None, Field(description="Service address, one line or structured")] = None,
        limit: Annotated[int, Field(ge=1, le=25, description="How many matches at most")] = 5,
    ) -> LookupResult:
        """Find who is calling. Use this first on every call, with the caller ID alone if that is all you have,
        then again with the name or address they give. Matches carry a confidence: `exact` and `likely` may be
        used directly (the top one comes with its profile: service addresses with access notes, equipment, recent
        jobs and open balance), `possible` must be confirmed with the caller first. A customer is an account (a
        household or a business); `caller` says which of its contacts is calling, or that the caller is probably a
        new contact of it to confirm (another member of the household, a tenant). An empty list means a new
        customer: book them with create_job and their details."""
        served = business(ctx)
        if not any((phone, name and name.strip(), email, address)):
            raise InvalidInput("phone", "give at least one of phone, name, email or address to search by")
        try:
            where = parse_address(address) if address else None
        except ValueError as exc:
            raise InvalidInput("address", str(exc)) from None
        query = caller_profile(name=name, phone=phone, email=email, address=where, region=served.settings.business.country)
        found = await reads.recognise(served, query, limit)
        matches = [CustomerMatch(customer_id=m.customer_id, name=m.name, score=m.score, confidence=m.confidence,  # type: ignore[arg-type]
                                 reasons=m.reasons, level=m.level) for m in found.matches]  # type: ignore[arg-type]
        top = matches[0].confidence if matches else None
        card = CallerCard.of(found.profile) if found.profile else None
        person = found.contact
        caller = CallerContact(status=person.status, contact_id=person.contact_id, name=person.name,  # type: ignore[arg-type]
                               role=person.role, reasons=person.reasons) if person and card else None
        next_step = _NEXT[top]
        if caller and caller.status == "new" and card:
            place = card.locations[0].address if card.locations else "its address"
            next_step += _NEW_CONTACT.format(account=card.name, place=place)
        return LookupResult(matches=matches, customer=card, caller=caller, next_step=next_step)

    @mcp.tool(annotations=READ, meta=needs("customers:read"))
    @agent_errors
    async def get_customer(
        ctx: Context,
        customer_id: Annotated[str, Field(min_length=1, max_length=64, description="From lookup_customer or a job")],
    ) -> CustomerProfile:
        """Read one customer's full record: phones, e-mails, service addresses with access notes and equipment,
        their most recent jobs and their open balance. Use it when you already have the customer_id."""
        return await reads.customer(business(ctx), customer_id)
