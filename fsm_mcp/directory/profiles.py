"""Customers as identity sees them: each one's profile (name, numbers, e-mails, places), built from what the
store holds (`store/directory.py`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

from fsm_mcp.identity.addresses import address_entry
from fsm_mcp.identity.keys import Profile
from fsm_mcp.identity.names import PersonName
from fsm_mcp.identity.names import parse_name as _parse_name
from fsm_mcp.store import directory as rows


@lru_cache(maxsize=1 << 16)
def parse_name(raw: str) -> PersonName:
    """A stored name parsed once while it is in use: a base repeats its common names, and a lookup's candidates
    (and a rebuild's customers) are parsed on every read. PersonName is frozen, so one may be shared."""
    return _parse_name(raw)


def load_profiles_and_people(conn: Any, tenant: str, ids: Sequence[str], query: Profile,
                             ) -> tuple[dict[str, Profile], dict[str, list[str]]]:
    """`load_profiles` for a lookup, and, when the query has a name, the names of each account's other
    contacts (those not named as the account), read in the same statement."""
    parts = [part for part in rows.PARTS if getattr(query, part)]
    people: dict[str, list[str]] = {}
    if query.name is not None:
        parts.append("people")
    profiles = _profiles(conn, tenant, ids, parts, query.name is not None, people)
    return profiles, people


def load_profiles(conn: Any, tenant: str, ids: Sequence[str], compared_with: Profile | None = None,
                  ) -> dict[str, Profile]:
    """Identity profiles of live (not merged) customers among `ids`.

    Given the query they are to be compared with, only the parts it has are read: a caller
    ID alone needs the candidates' numbers, not their addresses parsed (a lookup waits on it).
    """
    q = compared_with
    parts = [part for part in rows.PARTS if q is None or getattr(q, part)]
    return _profiles(conn, tenant, ids, parts, q is None or q.name is not None, {})


def _profiles(conn: Any, tenant: str, ids: Sequence[str], parts: list[str], with_name: bool,
              people: dict[str, list[str]]) -> dict[str, Profile]:
    profiles: dict[str, Profile] = {}
    for cid, name, found in rows.profile_rows(conn, tenant, ids, parts):
        profile = Profile(name=parse_name(name) if with_name else None, name_raw=name)
        for part, value in zip(parts, found, strict=True):
            if part == "addresses":
                profile.addresses.extend(address_entry(*place) for place in value)
            elif part == "people":
                if value:
                    people[cid] = value
            else:
                getattr(profile, part).update(value)
        profiles[cid] = profile
    return profiles


def all_profiles(conn: Any, tenant: str) -> Iterator[tuple[str, Profile]]:
    """Every live customer's profile, in id order, by one walk of the store."""
    for cid, name, phones, emails, places in rows.every_profile_row(conn, tenant):
        yield cid, Profile(parse_name(name), name, set(phones), set(emails), [address_entry(*p) for p in places])
