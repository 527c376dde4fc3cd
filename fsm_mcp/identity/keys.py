"""Blocking keys: the few index entries that find a customer's candidates without a scan.

A record and a query that could be the same customer share at least one key. Keys are
plain strings, stored beside the customer and looked up by equality.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from fsm_mcp.identity.addresses import StreetAddress
from fsm_mcp.identity.names import PersonName, given_forms


@dataclass(slots=True)
class Profile:
    """What identity knows about one customer (or about a caller, for a query)."""

    name: PersonName | None = None
    name_raw: str = ""
    phones: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    addresses: list[tuple[StreetAddress, str]] = field(default_factory=list)


def _name_keys(name: PersonName, swap: bool) -> Iterable[str]:
    orders = [(name.given, name.family)]
    if swap and name.family:
        orders.append((name.family, name.given))
    for given, family in orders:
        for form in given_forms(given):
            yield f"n:{form}|{family}"
        if family and given:
            yield f"i:{given[0]}|{family}"


def _address_keys(address: StreetAddress) -> Iterable[str]:
    if address.house and address.street:
        yield f"a:{address.key}"
        if address.postal:
            yield f"h:{address.house}|{address.postal[:5]}"


def record_keys(profile: Profile) -> set[str]:
    keys = {f"p:{p}" for p in profile.phones} | {f"e:{e}" for e in profile.emails}
    if profile.name and profile.name.parts:
        keys.update(_name_keys(profile.name, swap=False))
    for address, _ in profile.addresses:
        keys.update(_address_keys(address))
    return keys


def query_keys(query: Profile) -> set[str]:
    keys = {f"p:{p}" for p in query.phones} | {f"e:{e}" for e in query.emails}
    if query.name and query.name.parts:
        keys.update(k for k in _name_keys(query.name, swap=True) if not k.startswith("i:"))
        if len(query.name.given) == 1 and query.name.family:  # "W. Jenkins"
            keys.add(f"i:{query.name.given}|{query.name.family}")
    for address, _ in query.addresses:
        keys.update(_address_keys(address))
    return keys
