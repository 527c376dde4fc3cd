"""Customers as identity sees them: each one's profile (name, numbers, e-mails, places), built from what the
store holds (`store/directory.py`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from fsm_mcp.identity.addresses import address_entry
from fsm_mcp.identity.keys import Profile
from fsm_mcp.identity.names import parse_name
from fsm_mcp.store import directory as rows


def load_profiles(conn: Any, tenant: str, ids: Sequence[str], compared_with: Profile | None = None,
                  ) -> dict[str, Profile]:
    """Identity profiles of live (not merged) customers among `ids`.

    Given the query they are to be compared with, only the parts it has are read: a caller
    ID alone needs the candidates' numbers, not their addresses parsed (a lookup waits on it).
    """
    q = compared_with
    parts = [part for part in rows.PARTS if q is None or getattr(q, part)]
    with_name = q is None or q.name is not None
    profiles: dict[str, Profile] = {}
    for cid, name, found in rows.profile_rows(conn, tenant, ids, parts):
        profile = Profile(name=parse_name(name) if with_name else None, name_raw=name)
        for part, value in zip(parts, found, strict=True):
            if part == "addresses":
                profile.addresses.extend(address_entry(*place) for place in value)
            else:
                getattr(profile, part).update(value)
        profiles[cid] = profile
    return profiles


def all_profiles(conn: Any, tenant: str) -> Iterator[tuple[str, Profile]]:
    """Every live customer's profile, in id order, by one walk of the store."""
    for cid, name, phones, emails, places in rows.every_profile_row(conn, tenant):
        yield cid, Profile(parse_name(name), name, set(phones), set(emails), [address_entry(*p) for p in places])
