"""Comparing two customer profiles field by field, as Fellegi–Sunter comparison levels.

Each field of a pair lands on one level: "exact", a graded agreement ("nickname",
"initial", "close" for a slip of a letter or two, "similar" for a name that sounds the
same), or "different". A field missing on either side gets no level at all: absence is
neutral, never a disagreement. `model.py` turns levels into weights of evidence; this
module only says what agrees with what, and in words a person would use.

Records are compared in the arrangement that agrees best: given and family names may be
swapped, and a street and a second address line may have traded places.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from rapidfuzz.distance import OSA, JaroWinkler

from fsm_mcp.identity.addresses import StreetAddress, split_street, street_core
from fsm_mcp.identity.keys import Profile
from fsm_mcp.identity.names import PersonName, nickname_pair, ocr_form, sound

# Levels from strongest to weakest; a field's list says which it can take.
LEVELS: dict[str, tuple[str, ...]] = {
    "given": ("exact", "nickname", "initial", "close", "similar", "different"),
    "family": ("exact", "close", "similar", "different"),
    "phone": ("exact", "different"),
    "email": ("exact", "different"),
    "house": ("exact", "different"),
    "street": ("exact", "close", "different"),
    "line2": ("exact", "close", "different"),
    "locality": ("exact", "close", "different"),
    "postal": ("exact", "close", "different"),
    "region": ("exact", "different"),
}
_RANK = {level: len(levels) - i for levels in LEVELS.values() for i, level in enumerate(levels)}


@dataclass(slots=True)
class Comparison:
    levels: dict[str, str] = field(default_factory=dict)  # field -> level; a field missing on a side is absent
    said: dict[str, str] = field(default_factory=dict)  # field -> the two values, for reasons
    phone_owners: int = 1  # customers holding the shared number (a household line, a switchboard)
    swapped_names: bool = False
    values: dict[str, str] = field(default_factory=dict)  # field -> the value both agree on exactly, for its frequency


# The string comparisons below are pure and a base repeats their arguments (its given names, surnames, streets
# and towns), so each pair is worked out once while it is in use: a duplicate search compares the same few
# thousand values across hundreds of thousands of pairs. Bounded (a few MB each), so a million-customer base or
# a long-running server cannot grow them; addresses repeat least and weigh most, so theirs is smaller.
_PAIRS = 1 << 16


@lru_cache(maxsize=_PAIRS)
def closeness(a: str, b: str) -> str:
    """exact, close (a slip: one or two edits, or Jaro-Winkler >= 0.92), similar (sounds alike) or different."""
    if a == b or a.replace(" ", "") == b.replace(" ", ""):
        return "exact"
    short = min(len(a), len(b))
    if short >= 4:
        edits = OSA.distance(a, b)
        if edits <= 1 or (short >= 8 and edits <= 2) or ocr_form(a) == ocr_form(b):
            return "close"
        if JaroWinkler.similarity(a, b) >= 0.92:
            return "close"
    if short >= 3 and (sound(a) == sound(b) or (short >= 5 and JaroWinkler.similarity(a, b) >= 0.85)):
        return "similar"
    return "different"


@lru_cache(maxsize=_PAIRS)
def _given_level(a: str, b: str) -> str:
    if a == b:
        return "exact"
    if nickname_pair(a, b):
        return "nickname"
    if (len(a) == 1 and b.startswith(a)) or (len(b) == 1 and a.startswith(b)):
        return "initial"
    if min(len(a), len(b)) <= 3 and a.replace(" ", "") != b.replace(" ", ""):
        return "similar" if sound(a) == sound(b) else "different"  # Jon and Joan are two people
    return closeness(a, b)


def _better(levels: list[str]) -> int:
    return sum(_RANK[level] for level in levels)


def compare_names(q: PersonName, r: PersonName, out: Comparison) -> None:
    if not q.parts or not r.parts:
        return
    qg, qf, rg, rf = q.given, q.family, r.given, r.family
    if len(q.parts) > 2 and len(qg) < 3:  # "jac ob lanyon": a given name split by a slip
        qg = "".join(q.parts[:-1])
    if len(r.parts) > 2 and len(rg) < 3:
        rg = "".join(r.parts[:-1])
    if "".join(q.parts) == "".join(r.parts):
        out.levels["given"] = "exact"
        if qf and rf:
            out.levels["family"] = "exact"
    elif not qf or not rf:  # one side has a single name: it may be either part of the other
        one, other = (qg, (rg, rf)) if not qf else (rg, (qg, qf))
        as_given, as_family = _given_level(one, other[0]), closeness(one, other[1]) if other[1] else "different"
        if _RANK[as_family] > _RANK[as_given] and as_family != "different":
            out.levels["family"] = as_family
        else:
            out.levels["given"] = as_given
    else:
        straight = [_given_level(qg, rg), closeness(qf, rf)]
        crossed = [_given_level(qg, rf), closeness(qf, rg)]
        if _better(crossed) > _better(straight):
            straight, out.swapped_names = crossed, True
        out.levels["given"], out.levels["family"] = straight
    out.said["given"] = f"{qg.title()} / {(rf if out.swapped_names else rg).title()}"
    out.said["family"] = f"{qf.title()} / {(rg if out.swapped_names else rf).title()}"
    for part, value in (("given", rf if out.swapped_names else rg), ("family", rg if out.swapped_names else rf)):
        if out.levels.get(part) == "exact" and value:
            out.values[part] = value


@lru_cache(maxsize=_PAIRS)
def _line(a: str, b: str) -> str:
    level = closeness(a, b)
    if level != "exact":
        (core_a, suffix_a), (core_b, suffix_b) = split_street(a), split_street(b)
        if core_a == core_b and (suffix_a == suffix_b or not suffix_a or not suffix_b):
            return "exact"
        if suffix_a and suffix_b and suffix_a != suffix_b:
            return "different"  # Birch Drive and Birch Avenue are two streets
    return "close" if level == "similar" else level


@lru_cache(maxsize=1 << 14)
def _address_levels(q: StreetAddress, r: StreetAddress) -> dict[str, str]:
    """The levels of two addresses (shared between calls: read it, never change it)."""
    levels: dict[str, str] = {}
    if q.house and r.house:
        levels["house"] = "exact" if q.house == r.house else "different"
    arrangements = [((q.street, r.street), (q.unit, r.unit)),
                    ((q.street, r.unit), (q.unit, r.street))]  # street and second line traded places
    best: dict[str, str] = {}
    for (sq, sr), (uq, ur) in arrangements:
        found = {}
        if sq and sr:
            found["street"] = _line(sq, sr)
        if uq and ur:
            found["line2"] = _line(uq, ur)
        if not best or _better(list(found.values())) > _better(list(best.values())):
            best = found
    levels.update(best)
    if q.locality and r.locality:
        levels["locality"] = _line(q.locality, r.locality)
    if q.postal and r.postal:
        levels["postal"] = _postal(q.postal, r.postal)
    if q.region and r.region:
        levels["region"] = "exact" if q.region == r.region else "different"
    return levels


@lru_cache(maxsize=_PAIRS)
def _postal(a: str, b: str) -> str:
    a, b = a[:5], b[:5]
    if a == b:
        return "exact"
    if len(a) == len(b) and OSA.distance(a, b) == 1:  # one digit mistyped, or two swapped
        return "close"
    return "different"


def compare(
    query: Profile, record: Profile, owners: Mapping[str, int], weight: Callable[[dict[str, str]], float]
) -> Comparison:
    """The levels of every field present on both sides; of several addresses, the pair whose levels
    `weight` rates highest."""
    out = Comparison()
    if query.phones and record.phones:
        shared = query.phones & record.phones
        out.levels["phone"] = "exact" if shared else "different"
        if shared:
            out.phone_owners = min(owners.get(p, 1) for p in shared)
    if query.emails and record.emails:
        out.levels["email"] = "exact" if query.emails & record.emails else "different"
    if query.name and record.name:
        compare_names(query.name, record.name, out)
    best: tuple[float, dict[str, str], str, str, StreetAddress] | None = None
    if len(query.addresses) == 1 and len(record.addresses) == 1:  # the one pair is the best: no need to weigh it
        (q_addr, q_raw), (r_addr, r_raw) = query.addresses[0], record.addresses[0]
        best = (0.0, _address_levels(q_addr, r_addr), q_raw, r_raw, r_addr)
    else:
        for q_addr, q_raw in query.addresses:
            for r_addr, r_raw in record.addresses:
                levels = _address_levels(q_addr, r_addr)
                rated = weight(levels)
                if best is None or rated > best[0]:
                    best = (rated, levels, q_raw, r_raw, r_addr)
    if best is not None:
        out.levels.update(best[1])
        out.said["address"] = f"{best[2]} / {best[3]}"
        if best[1].get("street") == "exact":
            out.values["street"] = street_value(best[4].street)
        if best[1].get("locality") == "exact":
            out.values["locality"] = best[4].locality
    return out


def street_value(street: str) -> str:
    """A street as its frequency is counted: "Oak St", "oakstreet" and "Oak Street" are one."""
    return street_core(street)
