"""Scoring candidates against a query, with reasons and a confidence an agent can act on.

    exact     safe to attach without asking
    likely    safe to attach; a confirming question is polite
    possible  ask the caller before attaching
"""

from __future__ import annotations

from dataclasses import field

from pydantic.dataclasses import dataclass

from fsm_mcp.identity.compare import Comparison, compare
from fsm_mcp.identity.keys import Profile
from fsm_mcp.identity.model import Model, default_model

CLOSE = 10  # a runner-up within this many points makes the top match ambiguous
_BANDS = {"exact": (90, 100), "likely": (75, 89), "possible": (40, 74)}
_FIELD_WORDS = {"given": "given name", "family": "surname", "locality": "town", "postal": "postal code",
                "region": "state", "line2": "second address line"}


@dataclass(slots=True)
class Scored:
    customer_id: str
    name: str
    score: int
    confidence: str
    reasons: list[str] = field(default_factory=list)
    # "contact": the query is this record's person; "account": another person of the record's account
    # (a household member at its house, a name changed by marriage): the caller is a new contact to confirm.
    level: str = "contact"


_GIVEN_AGREES = frozenset({"exact", "nickname", "initial", "close"})
_CAPS = {"exact": 2, "likely": 1, "possible": 0}


@dataclass(slots=True)
class Verdict:
    confidence: str
    level: str = "contact"
    caveat: str | None = None


def _same_place(levels: dict[str, str]) -> bool:
    """One house: its street (or, with no street, its named second line) agrees, and so does its
    number, or one record has no number and nothing else in the address disagrees."""
    street = levels.get("street") or levels.get("line2")
    if street not in ("exact", "close"):
        return False
    if "house" in levels:
        return levels["house"] == "exact"
    return all(levels.get(f) != "different" for f in ("street", "line2", "locality", "postal"))


def contacts_differ(levels: dict[str, str]) -> bool:
    """Both records have a phone or an e-mail, and none of them agrees."""
    contacts = [levels[f] for f in ("phone", "email") if f in levels]
    return bool(contacts) and "exact" not in contacts


def _confidence(model: Model, weight: float, found: Comparison) -> Verdict | None:
    """The band the match weight reaches, for the base's size, and the level it is at, with the
    rules a person applies where weights of independent fields mislead (a household shares its
    surname, address and line: one fact, not three):

    - something a person would weigh is needed at all: a name that agrees, a shared phone or
      e-mail, or the same house; a street or town shared with strangers is not evidence of identity;
    - one name agrees and the other does not (another given name with the surname, or the given
      name with another surname: a name changed by marriage) at the same house or on a shared line
      is the same account with another person: at most `likely`, at the account level; elsewhere
      at most `possible`, and nothing at all when their phones and e-mails differ too (a namesake's
      relative across town is not worth asking a caller about);
    - neither name agrees: at most `possible` (a new owner, a tenant, a housemate);
    - a pair whose phones and e-mails all differ needs more than a name: at most `possible` unless
      they share a house;
    - `exact` needs no field that disagrees outright.
    """
    bands = model.bands_for()
    band = next((b for b in ("exact", "likely", "possible") if weight >= bands[b]), None)
    if band is None:
        return None
    levels = found.levels
    given, family = levels.get("given"), levels.get("family")
    agree = given in _GIVEN_AGREES, family in ("exact", "close")
    unsure = given in ("similar", "different"), family in ("similar", "different")  # sounds alike: maybe not
    line = levels.get("phone") == "exact" or levels.get("email") == "exact"
    place = _same_place(levels)
    if not (any(agree) or line or place):
        return None
    verdict = Verdict(band)

    def cap(most: str, caveat: str | None = None) -> None:
        if _CAPS[verdict.confidence] > _CAPS[most]:
            verdict.confidence = most
            verdict.caveat = verdict.caveat or caveat

    against = contacts_differ(levels)
    if not any(agree) and any(unsure):
        if place and levels.get("house") == "exact" and not against:  # the house itself, not a street
            verdict.level, verdict.caveat = "account", (
                "neither name agrees, at the same house and with no phone or e-mail against it: perhaps another "
                "member of the household, a tenant or a new owner; confirm they call for this account")
            cap("likely")
        else:
            cap("possible", "neither name agrees: perhaps a new owner, tenant or housemate; ask the caller"
                if place or line else "neither name agrees; ask the caller")
    elif any(unsure):
        if place or line:
            where = "at the same house" if place else "on a shared line"
            verdict.level, verdict.caveat = "account", (
                f"another given name with the same surname {where}: perhaps another member of the household; "
                "confirm they call for this account" if agree[1] else
                f"the same given name with another surname {where}: perhaps a name changed by marriage; "
                "confirm the caller's name")
            cap("likely")
        elif against:
            return None  # a surname (or a given name) against another name, phone and place: nobody to ask about
        else:
            # No phone or e-mail to weigh: the address's other fields decide, as they would for a slip in the house
            # number or the street; at the account level, since the person may be another one of it.
            verdict.level, verdict.caveat = "account", (
                "one name differs and the address only in part, with no phone or e-mail to tell: perhaps the same "
                "household with a slip in its address; confirm the caller's name and address")
            cap("likely")
    if found.phone_owners > 1 and given is None and "address" not in found.said:
        cap("possible", "the number is shared by several customers")
    if contacts_differ(levels) and not place:
        cap("possible", "phone and e-mail differ, and a name alone is not enough; ask the caller")
    if "different" in levels.values():
        cap("likely")  # exact means nothing on file contradicts the caller
    return verdict


def _reasons(found: Comparison) -> list[str]:
    said, levels = found.said, found.levels
    out = []
    if levels.get("phone") == "exact":
        out.append("phone matches" + (" (number shared by several customers)" if found.phone_owners > 1 else ""))
    elif levels.get("phone") == "different":
        out.append("phone differs")
    if levels.get("email") == "exact":
        out.append("e-mail matches")
    elif levels.get("email") == "different":
        out.append("e-mail differs")
    if found.swapped_names:
        out.append("name matches with given and family names swapped")
    for part in ("given", "family"):
        level = levels.get(part)
        words = _FIELD_WORDS[part]
        if level == "nickname":
            short, formal = sorted(said[part].split(" / "), key=len)
            out.append(f"{short} is a nickname of {formal}")
        elif level == "initial":
            out.append(f"{words}: the initial fits ({said[part]})")
        elif level == "close":
            out.append(f"{words} differs by a slip ({said[part]})")
        elif level == "similar":
            out.append(f"{words} sounds the same ({said[part]})")
        elif level == "different":
            out.append(f"{words} differs ({said[part]})")
    if levels.get("given") == "exact" and levels.get("family") == "exact" and not found.swapped_names:
        out.insert(0, "name matches")
    if "address" in said:
        house, street = levels.get("house"), levels.get("street")
        if house == "exact" and street in ("exact", "close"):
            out.append(f"same house ({said['address']})")
        elif street in ("exact", "close") and house == "different":
            out.append(f"same street, another house number ({said['address']})")
        elif street == "different":
            out.append(f"another street ({said['address']})")
        elif house == "different":
            out.append(f"another house number ({said['address']})")
        for part in ("line2", "locality", "postal", "region"):
            if levels.get(part) in ("close", "different"):
                out.append(f"{_FIELD_WORDS[part]} {'has a slip' if levels[part] == 'close' else 'differs'}")
    return out


def score(
    query: Profile, record: Profile, customer_id: str, phone_owners: dict[str, int], model: Model | None = None
) -> Scored | None:
    """The record as a match for the query, or None when the evidence does not reach `possible`."""
    model = model or default_model()
    found = compare(query, record, phone_owners, model.total)
    weight = model.total(found.levels, found.phone_owners, found.values)
    verdict = _confidence(model, weight, found)
    if verdict is None:
        return None
    confidence = verdict.confidence
    reasons = _reasons(found) + ([verdict.caveat] if verdict.caveat else [])
    low, high = _BANDS[confidence]
    bands = model.bands_for()
    floor = bands[confidence]
    ceiling = {"exact": floor + 20, "likely": bands["exact"], "possible": bands["likely"]}[confidence]
    strength = max(0.0, min(1.0, (weight - floor) / (ceiling - floor)))
    return Scored(customer_id, record.name_raw, round(low + (high - low) * strength), confidence, reasons, verdict.level)


def settle(matches: list[Scored]) -> list[Scored]:
    """Sort best first; two confident matches that are close make neither safe to attach. A record
    of the caller themselves outranks one of their household (the caller is its contact), so only
    matches at the best level present compete."""
    matches.sort(key=lambda m: (m.level != "contact" or m.confidence == "possible", -m.score, m.name, m.customer_id))
    confident = [m for m in matches if m.confidence in ("exact", "likely")]
    confident = [m for m in confident if m.level == confident[0].level] if confident else []
    if len(confident) >= 2 and confident[0].score - confident[1].score < CLOSE:
        for m in confident:
            if confident[0].score - m.score < CLOSE:
                m.confidence = "possible"
                m.score = min(m.score, 74)
                m.reasons.append("another customer fits about as well; ask the caller which one")
    matches.sort(key=lambda m: (m.level != "contact" or m.confidence == "possible", -m.score, m.name, m.customer_id))
    return matches
