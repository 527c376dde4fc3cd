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


def _confidence(model: Model, weight: float, found: Comparison) -> tuple[str | None, str | None]:
    """The band the match weight reaches, capped where weight alone misleads: two different given
    names at one address and number are a household (spouses, parent and child), not one person,
    however much else agrees; so are two surnames on one phone line or e-mail (housemates, an
    office switchboard), even when the two surnames only sound alike. Any field that disagrees outright (a surname changed by marriage, another
    street, another number) stops a pair at likely."""
    bands = model.bands
    level = next((band for band in ("exact", "likely", "possible") if weight >= bands[band]), None)
    if level is None:
        return None, None
    given, family = found.levels.get("given"), found.levels.get("family")
    if given in ("different", "similar") and level != "possible":
        return "possible", "two given names at one place: perhaps someone else in the household; ask the caller"
    if found.phone_owners > 1 and given is None and level != "possible" and "address" not in found.said:
        return "possible", "the number is shared by several customers"
    shared_line = found.levels.get("phone") == "exact" or found.levels.get("email") == "exact"
    if family in ("different", "similar") and shared_line and level != "possible":
        return "possible", "another surname on a shared line: perhaps a housemate or colleague; ask the caller"
    if level == "exact" and "different" in found.levels.values():
        return "likely", None  # exact means nothing on file contradicts the caller
    return level, None


def _reasons(found: Comparison) -> list[str]:
    said, levels = found.said, found.levels
    out = []
    if levels.get("phone") == "exact":
        out.append("phone matches" + (" (number shared by several customers)" if found.phone_owners > 1 else ""))
    if levels.get("email") == "exact":
        out.append("e-mail matches")
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
    confidence, caveat = _confidence(model, weight, found)
    if confidence is None:
        return None
    reasons = _reasons(found) + ([caveat] if caveat else [])
    low, high = _BANDS[confidence]
    floor = model.bands[confidence]
    ceiling = {"exact": floor + 20, "likely": model.bands["exact"], "possible": model.bands["likely"]}[confidence]
    strength = max(0.0, min(1.0, (weight - floor) / (ceiling - floor)))
    return Scored(customer_id, record.name_raw, round(low + (high - low) * strength), confidence, reasons)


def settle(matches: list[Scored]) -> list[Scored]:
    """Sort best first; two confident matches that are close make neither safe to attach."""
    matches.sort(key=lambda m: (-m.score, m.name, m.customer_id))
    confident = [m for m in matches if m.confidence in ("exact", "likely")]
    if len(confident) >= 2 and confident[0].score - confident[1].score < CLOSE:
        for m in confident:
            if confident[0].score - m.score < CLOSE:
                m.confidence = "possible"
                m.score = min(m.score, 74)
                m.reasons.append("another customer fits about as well; ask the caller which one")
        matches.sort(key=lambda m: (-m.score, m.name, m.customer_id))
    return matches
