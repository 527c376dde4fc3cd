"""Blocking keys: the few index entries that find a customer's candidates without a scan.

A record and a query that could be the same customer share at least one key. Keys are
plain strings, stored beside the customer and looked up by equality. The wide keys (a
name's sound within a postal area) are read only when the narrow ones found no one to
attach, and only where few customers share them: they catch a record whose street, house,
postal code or name spelling slipped, in a base where that sound in that postal area (or on
that street, or that house number in that town) is rare.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from fsm_mcp.identity.addresses import StreetAddress, street_core
from fsm_mcp.identity.names import PersonName, given_forms, sound

WIDE = ("s:", "t:", "g:")  # prefixes of the wide keys
_HEAD = 4  # letters of a street or town a wide key keeps: slips and split words fall mostly later in a word
MAX_WIDE_BLOCK = 12  # a wide key shared by more customers than this is a crowd, not a lead (a busy postal area)


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


def _sound_key(name: PersonName) -> Iterable[str]:
    """Both names as they sound, in either order: "Cono Corey" and "Corey Condo" share nothing else."""
    if name.given and name.family:
        yield "m:" + "|".join(sorted((sound(name.given), sound(name.family))))


def _address_keys(address: StreetAddress, name: PersonName | None) -> Iterable[str]:
    if address.house and address.street:
        yield f"a:{address.key}"
    if address.house and address.postal:
        yield f"h:{address.house}|{address.postal[:5]}"
    if address.street and address.locality:  # the house number may be the slip
        yield f"l:{address.street.replace(' ', '')}|{address.locality}"
    if address.unit and address.locality:  # a named second line ("Kurrall Park") in its town
        yield f"u:{address.unit.replace(' ', '')}|{address.locality}"
    if name and name.parts and address.postal:  # the street may be the slip: who by that name lives in that postal area
        for part in {name.given, name.family} - {""}:
            yield f"s:{sound(part)}|{address.postal[:5]}"
    if name and name.parts and (line := _head(street_core(address.street or address.unit))):
        for part in {name.given, name.family} - {""}:  # the postal code and house may be the slips: who by that
            yield f"t:{sound(part)}|{line}"  # name lives on that street (or that named second line)
    if address.house and address.locality:  # the street and the name may be the slips: that house in that town
        yield f"g:{address.house}|{_head(address.locality)}"


def _head(text: str) -> str:
    return text.replace(" ", "")[:_HEAD]


def record_keys(profile: Profile) -> set[str]:
    keys = {f"p:{p}" for p in profile.phones} | {f"e:{e}" for e in profile.emails}
    if profile.name and profile.name.parts:
        keys.update(_name_keys(profile.name, swap=False))
        keys.update(_sound_key(profile.name))
    for address, _ in profile.addresses:
        keys.update(_address_keys(address, profile.name))
    return keys


def query_keys(query: Profile) -> set[str]:
    keys = {f"p:{p}" for p in query.phones} | {f"e:{e}" for e in query.emails}
    if query.name and query.name.parts:
        keys.update(k for k in _name_keys(query.name, swap=True) if not k.startswith("i:"))
        if len(query.name.given) == 1 and query.name.family:  # "W. Jenkins"
            keys.add(f"i:{query.name.given}|{query.name.family}")
        keys.update(_sound_key(query.name))
    for address, _ in query.addresses:
        keys.update(_address_keys(address, query.name))
    return keys
