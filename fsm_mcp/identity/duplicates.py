"""Finding the records in a customer base that are one customer.

Candidates come from the blocking keys: records that share a phone, an e-mail, a street
address or a full name form. Records are accounts: a household's records are one account's
duplicates, and each is compared as each of its people (its billing name and its contacts'). Each candidate pair is scored the way a lookup is, with one
record as the query, so a pair means what a match means (`exact`: same customer, safe to
merge; `likely`: almost surely, glance first; `possible`: a person must decide). Pairs at
or above the wanted confidence are joined into groups.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fsm_mcp.identity.keys import MAX_WIDE_BLOCK, WIDE, Profile
from fsm_mcp.identity.model import Model
from fsm_mcp.identity.names import parse_name
from fsm_mcp.identity.scoring import Scored, score

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparison

RANK = {"possible": 0, "likely": 1, "exact": 2}
MAX_BLOCK = 50  # records sharing one key; beyond this the key says too little (a common name, a switchboard)
PAIR_KEYS = ("p:", "e:", "a:", "h:", "n:", "m:", "l:", "s:", "u:", "t:", "g:")  # initials ("i:") are too coarse to pair on


@dataclass(slots=True)
class Link:
    a: str
    b: str
    match: Scored


@dataclass(slots=True)
class Group:
    customer_ids: list[str]
    confidence: str
    score: int
    reasons: list[str]
    # For each member, which person of the account it is (1, 2, ...): records linked as one person share
    # a number; a household's other members (linked at the account level) get their own.
    persons: list[int]


def candidate_pairs(blocks: Iterable[tuple[str, Sequence[str]]], max_block: int = MAX_BLOCK) -> set[tuple[str, str]]:
    """Every pair of records that share a usable key, each pair once, in id order."""
    pairs: set[tuple[str, str]] = set()
    for key, members in blocks:
        limit = MAX_WIDE_BLOCK if key.startswith(WIDE) else max_block
        if not key.startswith(PAIR_KEYS) or not 2 <= len(members) <= limit:
            continue
        ordered = sorted(members)
        for i, a in enumerate(ordered):
            pairs.update((a, b) for b in ordered[i + 1 :])
    return pairs


def phone_owners(blocks: Iterable[tuple[str, Sequence[str]]]) -> dict[str, int]:
    return {key[2:]: len(members) for key, members in blocks if key.startswith("p:")}


def link(
    pairs: Iterable[tuple[str, str]],
    profiles: Mapping[str, Profile],
    owners: Mapping[str, int],
    min_confidence: str,
    on_pair: Callable[[], None] = lambda: None,
    model: Model | None = None,
    people: Mapping[str, Sequence[str]] | None = None,
) -> list[Link]:
    """Score each pair; keep those at or above `min_confidence`. Records are compared as each of their
    people (`people`: a record's contact names), and a pair is as close as its closest two people.

    A number held by exactly the two records of a pair belongs to that one customer, so
    for a pair the owners count excludes the record playing the query.
    """
    others = {phone: count - 1 for phone, count in owners.items()}
    floor = RANK[min_confidence]
    people = people or {}
    links = []
    persons: dict[str, list[Profile]] = {}  # each record as its people, made once: a record is in many pairs

    def as_its_people(cid: str, profile: Profile) -> list[Profile]:
        found = persons.get(cid)
        if found is None:
            found = persons[cid] = as_people(profile, people.get(cid, ()))
        return found

    for a, b in pairs:
        on_pair()
        first, second = profiles.get(a), profiles.get(b)
        if first is None or second is None:
            continue
        found = None
        for query in as_its_people(a, first):
            for record in as_its_people(b, second):
                scored = score(query, record, b, others, model)
                if scored is not None and (found is None or _fit(scored) > _fit(found)):
                    found = scored
        if found is not None and RANK[found.confidence] >= floor:
            found.name = second.name_raw  # the account's (billing) name
            links.append(Link(a, b, found))
    return links


def as_people(profile: Profile, names: Sequence[str]) -> list[Profile]:
    """The account as each of its people: its billing name, then each contact named otherwise (Libby
    Mamarika, a contact of the Mamarika account, is its person), with the account's lines and places."""
    billing = profile.name_raw.strip().lower()
    return [profile] + [Profile(parse_name(name), name, profile.phones, profile.emails, profile.addresses)
                        for name in dict.fromkeys(names) if name.strip().lower() != billing]


def _fit(found: Scored) -> tuple[bool, int, int]:
    """A match of the person before one of another person of the account, then the surer, then the stronger."""
    return found.level == "contact", RANK[found.confidence], found.score


def group(links: Iterable[Link], order: Callable[[str], SupportsRichComparison] = str) -> list[Group]:
    """Join linked records into groups; a group is as sure as its weakest link.

    Members are listed in `order` (the oldest record first, by default the id); groups
    come surest first.
    """
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    edges = list(links)
    for edge in edges:
        parent[root(edge.a)] = root(edge.b)
    by_root: dict[str, list[Link]] = {}
    for edge in edges:
        by_root.setdefault(root(edge.a), []).append(edge)
    groups = []
    for members in by_root.values():
        ids = sorted({m.a for m in members} | {m.b for m in members}, key=order)
        weakest = min(members, key=lambda m: (RANK[m.match.confidence], m.match.score))
        if len(members) == 1:
            reasons = list(members[0].match.reasons)
        else:
            reasons = [f"{m.a} ~ {m.b}: " + "; ".join(m.match.reasons) for m in members]
        groups.append(Group(ids, weakest.match.confidence, weakest.match.score, reasons, _persons(ids, members)))
    groups.sort(key=lambda g: (-RANK[g.confidence], -g.score, g.customer_ids))
    return groups


def _persons(ids: list[str], links: list[Link]) -> list[int]:
    """Number the people among a group's records: records joined by person-level links are one."""
    person = {cid: cid for cid in ids}

    def root(x: str) -> str:
        while person[x] != x:
            x = person[x]
        return x

    for edge in links:
        if edge.match.level == "contact":
            person[root(edge.a)] = root(edge.b)
    numbers: dict[str, int] = {}
    return [numbers.setdefault(root(cid), len(numbers) + 1) for cid in ids]
