"""Scoring candidates against a query, with reasons and a confidence an agent can act on.

    exact     safe to attach without asking
    likely    safe to attach; a confirming question is polite
    possible  ask the caller before attaching
"""

from __future__ import annotations

from dataclasses import field

from pydantic.dataclasses import dataclass

from fsm_mcp.identity.addresses import compare_addresses
from fsm_mcp.identity.keys import Profile
from fsm_mcp.identity.names import compare_names

CLOSE = 10  # a runner-up within this many points makes the top match ambiguous


@dataclass(slots=True)
class Scored:
    customer_id: str
    name: str
    score: int
    confidence: str
    reasons: list[str] = field(default_factory=list)


def _band(confidence: str, strength: float) -> int:
    low, high = {"exact": (90, 100), "likely": (75, 89), "possible": (40, 74)}[confidence]
    return round(low + (high - low) * max(0.0, min(1.0, strength)))


def score(query: Profile, record: Profile, customer_id: str, phone_owners: dict[str, int]) -> Scored | None:
    reasons: list[str] = []
    phone = bool(query.phones & record.phones)
    email = bool(query.emails & record.emails)
    shared = phone and all(phone_owners.get(p, 1) > 1 for p in query.phones & record.phones)
    if phone:
        reasons.append("phone matches" + (" (number shared by several customers)" if shared else ""))
    if email:
        reasons.append("e-mail matches")

    name_score = 0
    if query.name and record.name:
        agreement = compare_names(query.name, record.name, query.name_raw, record.name_raw)
        name_score = agreement.score
        if agreement.reason:
            reasons.append(agreement.reason)
    address_score, address_reason = 0, None
    for q_addr, q_raw in query.addresses:
        for r_addr, r_raw in record.addresses:
            found = compare_addresses(q_addr, r_addr, q_raw, r_raw)
            if found.score > address_score:
                address_score, address_reason = found.score, found.reason
    if address_reason:
        reasons.append(address_reason)

    named = query.name is not None and bool(query.name.parts)
    strong = phone or email
    name_ok = name_score >= 90
    name_near = name_score >= 80
    address_ok = address_score >= 90

    if strong and named:
        if name_ok and not shared or name_ok and (email or address_ok):
            confidence = "exact"
        elif name_ok or name_near and (address_ok or email or not shared):
            confidence = "likely"
        elif name_score >= 70 and address_ok and (email or not shared):  # the number and the house agree; the name has a slip
            confidence = "likely"
        else:
            if name_score < 60:
                reasons.append(f"but the name on file is {record.name_raw}")
            confidence = "possible"
    elif strong:
        if shared and not (email or address_ok):
            confidence = "possible"
        else:
            confidence = "exact" if address_ok and (email or not shared) else "likely"
    elif named and name_near and address_score >= 70:
        confidence = "likely"
    elif name_near or address_score >= 70:
        confidence = "possible"
    else:
        return None

    given = [bool(query.phones or query.emails), named, bool(query.addresses)]
    parts = [1.0 if strong else 0.0, name_score / 100, address_score / 100]
    strength = sum(p for p, g in zip(parts, given, strict=True) if g) / max(1, sum(given))
    return Scored(customer_id, record.name_raw, _band(confidence, strength), confidence, reasons)


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
