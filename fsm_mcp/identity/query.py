"""Turning what a caller said into a query profile, with errors that name the field."""

from __future__ import annotations

from fsm_mcp.errors import InvalidInput
from fsm_mcp.identity.addresses import address_entry
from fsm_mcp.identity.emails import InvalidEmail, normalize_email
from fsm_mcp.identity.keys import Profile
from fsm_mcp.identity.names import parse_name
from fsm_mcp.identity.phones import InvalidPhone, parse_phone
from fsm_mcp.inputs import AddressIn


def caller_profile(
    *,
    name: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    address: AddressIn | None = None,
    region: str = "US",
    prefix: str = "",
) -> Profile:
    query = Profile()
    if name and name.strip():
        query.name, query.name_raw = parse_name(name), name.strip()
    if phone:
        try:
            query.phones.add(parse_phone(phone, region).e164)
        except InvalidPhone as exc:
            raise InvalidInput(f"{prefix}phone", str(exc)) from None
    if email:
        try:
            query.emails.add(normalize_email(email))
        except InvalidEmail as exc:
            raise InvalidInput(f"{prefix}email", str(exc)) from None
    if address:
        query.addresses.append(address_entry(address.street, address.unit, address.postal_code, address.city, address.state))
    return query
