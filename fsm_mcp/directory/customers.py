"""Customers, their locations, and the identity index (match_keys) kept beside them: who a caller is, and
keeping each customer's keys current. The rows themselves are read and written by `store/directory.py`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from fsm_mcp.directory import identity_model
from fsm_mcp.directory.profiles import all_profiles, load_profiles, load_profiles_and_people, parse_name
from fsm_mcp.identity.keys import MAX_WIDE_BLOCK, WIDE, Profile, query_keys, record_keys
from fsm_mcp.identity.model import Model
from fsm_mcp.identity.scoring import Scored, score, settle
from fsm_mcp.store import directory as store
from fsm_mcp.store.directory import (
    NewCustomer,
    insert_customer,
    insert_customers,
    insert_location,
    insert_locations,
    load_customer,
    load_locations,
)

__all__ = ["NewCustomer", "insert_customer", "insert_customers", "insert_location", "insert_locations", "load_customer",
           "load_locations", "load_profiles", "lookup", "rebuild_index", "reindex"]

MAX_PER_KEY = 500  # a key shared by more customers than this says too little to be worth scoring
PROGRESS_EVERY = 20_000  # customers between a rebuild's progress reports


def reindex(conn: Any, tenant: str, customer_ids: Iterable[str]) -> None:
    """Recompute the match keys of these customers from what is stored."""
    ids = list(customer_ids)
    store.drop_keys(conn, tenant, ids)
    profiles = load_profiles(conn, tenant, ids)
    store.add_keys(conn, tenant, ((key, cid) for cid, profile in profiles.items() for key in record_keys(profile)))


def rebuild_index(conn: Any, tenant: str, progress: Callable[[int, int], None] | None = None) -> int:
    """Recompute every live customer's match keys, in the caller's transaction (lookups meanwhile
    see the old index). Needed only when an upgrade changes the key rules: creates, changes and
    merges keep the index current as they happen."""
    total = store.count_customers(conn, tenant)
    done = 0

    def wanted() -> Iterator[tuple[str, set[str]]]:
        nonlocal done
        for cid, profile in all_profiles(conn, tenant):
            yield cid, record_keys(profile)
            done += 1
            if progress and (done % PROGRESS_EVERY == 0 or done == total):
                progress(done, total)

    store.replace_all_keys(conn, tenant, wanted())
    return done


def _candidates(conn: Any, tenant: str, keys: Iterable[str], owners: dict[str, int]) -> set[str]:
    """Customers sharing any of these keys; a key shared by too many says too little (but a number or e-mail
    always counts). Records in `owners` how many live customers hold each queried number."""
    ids: set[str] = set()
    for key in keys:
        most = MAX_WIDE_BLOCK if key.startswith(WIDE) else MAX_PER_KEY
        holders = store.key_holders(conn, tenant, key, most)
        if key.startswith("p:"):
            owners[key[2:]] = len(holders)
        if len(holders) <= most or key[0] in "pe":
            ids.update(holders)
    return ids


def lookup(conn: Any, tenant: str, query: Profile, limit: int) -> list[Scored]:
    """Candidates from the narrow keys first; the wide ones only when those found no one to attach."""
    keys = query_keys(query)
    model = identity_model.load(conn, tenant)
    owners: dict[str, int] = {}
    scored: list[Scored] = []
    seen: set[str] = set()
    for tier in (sorted(k for k in keys if not k.startswith(WIDE)), sorted(k for k in keys if k.startswith(WIDE))):
        if not tier or any(m.confidence in ("exact", "likely") for m in scored):
            continue
        ids = _candidates(conn, tenant, tier, owners) - seen
        seen |= ids
        profiles, people = load_profiles_and_people(conn, tenant, sorted(ids), query)
        scored += [found for cid, profile in profiles.items()
                   if (found := _best_person(query, profile, cid, owners, model, people.get(cid, ()))) is not None]
    return settle(scored)[:limit]


_RANKED = {"exact": 2, "likely": 1, "possible": 0}


def _best_person(query: Profile, profile: Profile, cid: str, owners: dict[str, int], model: Model,
                 people: Sequence[str]) -> Scored | None:
    """The account as a match for the caller, as whichever of its people fits best: its billing name or one of
    its contacts' (Libby Mamarika, once a contact of the Mamarika account, is its person, not a stranger)."""
    best = score(query, profile, cid, owners, model)
    for name in people:
        if name.strip().lower() == profile.name_raw.strip().lower():
            continue
        found = score(query, Profile(parse_name(name), name, profile.phones, profile.emails, profile.addresses),
                      cid, owners, model)
        if found is not None and (best is None or (found.level == "contact", _RANKED[found.confidence], found.score)
                                  > (best.level == "contact", _RANKED[best.confidence], best.score)):
            found.name = profile.name_raw  # the account's (billing) name; the caller's contact is said apart
            best = found
    return best
