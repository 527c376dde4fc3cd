"""The directory's part in a booking, the same for every backend: which customer the
caller's details belong to, which of their places the job is at, and which of the
caller's numbers and e-mails the record does not hold yet."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from fsm_mcp.directory import customers
from fsm_mcp.errors import AmbiguousCustomer, InvalidInput
from fsm_mcp.identity.addresses import compare_addresses, parse_street
from fsm_mcp.identity.contacts import CallerPerson, which_contact
from fsm_mcp.identity.emails import normalize_email
from fsm_mcp.identity.keys import Profile
from fsm_mcp.identity.phones import parse_phone
from fsm_mcp.identity.query import caller_profile
from fsm_mcp.inputs import AddressIn, BookingRequest
from fsm_mcp.models import Customer, Location
from fsm_mcp.settings import Business

SAME_PLACE = 90


def attach(conn: sqlite3.Connection, business: Business, request: BookingRequest) -> tuple[str | None, Profile | None]:
    """The existing customer this booking is for, or None when a new one is to be created (with the
    caller's profile). Several plausible customers and no new_customer: the agent must ask."""
    if request.customer_id:
        found = customers.load_customer(conn, business.tenant_id, request.customer_id)
        return (found.merged_into or found.customer_id), None
    details = request.customer
    if details is None:
        raise InvalidInput("customer_id", "give either customer_id (from lookup_customer) or customer details")
    query = caller_profile(
        name=details.name, phone=details.phone, email=details.email, address=request.address,
        region=business.country, prefix="customer.",
    )
    matches = customers.lookup(conn, business.tenant_id, query, limit=5)
    if not request.new_customer:
        if matches and matches[0].confidence in ("exact", "likely"):
            return matches[0].customer_id, None
        if matches:
            listing = "; ".join(f"{m.customer_id} {m.name} ({m.confidence}: {', '.join(m.reasons)})" for m in matches)
            raise AmbiguousCustomer(
                f"customer: not sure which customer this is. Candidates: {listing}. Ask the caller, then call "
                "create_job again with customer_id, or with new_customer=true if they are none of these."
            )
    return None, query


def pick_location(existing: Sequence[Location], address: AddressIn | None) -> str | None:
    """The customer's place this job is at; None when the address is a new one to add."""
    if address is None:
        if len(existing) == 1:
            return existing[0].location_id
        if not existing:
            raise InvalidInput("address", "this customer has no service address on file; give the address of the job")
        listing = "; ".join(f"{loc.location_id}: {loc.address.one_line()}" for loc in existing)
        raise InvalidInput("address", f"this customer has {len(existing)} service addresses ({listing}); say which one")
    wanted = parse_street(address.street, address.unit, address.postal_code)
    for loc in existing:
        a = loc.address
        if compare_addresses(wanted, parse_street(a.street, a.unit, a.postal_code), address.street, a.street).score >= SAME_PLACE:
            return loc.location_id
    return None


def caller_contacts(business: Business, request: BookingRequest) -> tuple[set[str], set[str]]:
    """The caller's numbers (E.164) and e-mails, as given in the booking."""
    details = request.customer
    phones = {request.caller_phone} if request.caller_phone else set()
    if details and details.phone:
        phones.add(parse_phone(details.phone, business.country).e164)
    emails = {normalize_email(details.email)} if details and details.email else set()
    return phones, emails


def missing_contacts(business: Business, request: BookingRequest, customer: Customer) -> tuple[list[str], list[str]]:
    """The caller's numbers and e-mails the customer's record does not hold yet, to learn them."""
    phones, emails = caller_contacts(business, request)
    held = {p.number for p in customer.phones}
    return sorted(phones - held), sorted(emails - set(customer.emails))


def caller_person(business: Business, request: BookingRequest, customer: Customer) -> CallerPerson | None:
    """Who of the customer's account is booking: one of its contacts, a new one (a name it has no contact for),
    or nobody said (a booking by customer_id without a name, from a number no contact holds)."""
    phones, emails = caller_contacts(business, request)
    details = request.customer
    query = caller_profile(name=details.name if details else None, region=business.country, prefix="customer.")
    query.phones, query.emails = phones, emails
    return which_contact(query, customer.contacts)
