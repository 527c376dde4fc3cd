"""Street addresses: USPS suffix and direction abbreviations, units, house numbers.

Addresses outside the US pass through folded; their postal codes and regions are kept
as given, never rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache

from rapidfuzz import fuzz

from fsm_mcp.identity.text import Agreement, fold

_SUFFIXES = {
    "street": "st", "str": "st", "avenue": "ave", "av": "ave", "boulevard": "blvd", "road": "rd",
    "drive": "dr", "lane": "ln", "court": "ct", "place": "pl", "terrace": "ter", "circle": "cir",
    "highway": "hwy", "parkway": "pkwy", "square": "sq", "trail": "trl", "way": "way", "crescent": "cres",
    "close": "cl", "expressway": "expy", "alley": "aly", "point": "pt", "ridge": "rdg", "crossing": "xing",
}
_DIRECTIONS = {
    "north": "n", "south": "s", "east": "e", "west": "w",
    "northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw",
}
_UNIT_WORDS = ("apartment", "apt", "unit", "suite", "ste", "#", "no", "flat", "rm", "room", "bldg", "fl")
_UNIT = re.compile(r"\s(?:" + "|".join(re.escape(w) for w in _UNIT_WORDS) + r")\s*([\w-]+)\s*$")


@dataclass(frozen=True, slots=True)
class StreetAddress:
    house: str
    street: str
    unit: str  # an apartment number, or a second address line ("Shopping Village")
    postal: str
    locality: str = ""
    region: str = ""

    @property
    def key(self) -> str:
        return f"{self.house} {self.street}".strip()


@cache
def _fold_place(text: str) -> str:
    """Towns and regions repeat across a base: fold each once (a reindex of a million customers feels it)."""
    return fold(text)


def _normal_word(word: str) -> str:
    return _SUFFIXES.get(word) or _DIRECTIONS.get(word) or word


@cache
def normalize_postal(raw: str | None) -> str:
    return fold(raw or "").replace(" ", "").upper()


def parse_street(
    street: str, unit: str | None = None, postal: str | None = None, locality: str | None = None,
    region: str | None = None,
) -> StreetAddress:
    """"123 North Oak Street Apt 4" -> house 123, street "n oak st", unit "4"."""
    text = " " + fold(street)
    found_unit = fold(unit or "").replace("#", "").strip()
    if (m := _UNIT.search(text)) and m.start() > 0:
        found_unit = found_unit or m.group(1)
        text = text[: m.start()]
    words = text.split()
    house = words.pop(0) if words and any(ch.isdigit() for ch in words[0]) else ""
    return StreetAddress(
        house=house,
        street=" ".join(_normal_word(w) for w in words),
        unit=found_unit.lstrip("#").strip(),
        postal=normalize_postal(postal),
        locality=_fold_place(locality or ""),
        region=_fold_place(region or ""),
    )


_RUN_IN = ("street", "st", "avenue", "ave", "road", "rd", "drive", "dr", "place", "pl", "crescent", "cres",
           "circuit", "cct", "court", "ct", "lane", "ln", "close", "cl", "way", "parade", "terrace", "ter",
           "boulevard", "blvd")
_RUN_IN_FORM = {"street": "st", "avenue": "ave", "road": "rd", "drive": "dr", "place": "pl", "crescent": "cres",
                "circuit": "cct", "court": "ct", "lane": "ln", "close": "cl", "terrace": "ter", "boulevard": "blvd"}


@lru_cache(maxsize=1 << 16)
def split_street(street: str) -> tuple[str, str]:
    """"alabaste rstreet" -> ("alabaster", "st"): the street's name without spaces, and its suffix, even
    when the suffix ran into the name."""
    joined = street.replace(" ", "")
    for suffix in _RUN_IN:
        if joined.endswith(suffix) and len(joined) > len(suffix) + 2:
            return joined[: -len(suffix)], _RUN_IN_FORM.get(suffix, suffix)
    return joined, ""


def street_core(street: str) -> str:
    """A street's name without its suffix or spaces: "Oak St", "oakstreet" and "Oak Street" are one."""
    return split_street(street)[0]


def address_entry(
    street: str, unit: str | None, postal: str | None, locality: str | None = None, region: str | None = None
) -> tuple[StreetAddress, str]:
    """The parsed address and the text shown in reasons, as identity profiles hold them."""
    return parse_street(street, unit, postal, locality, region), street + (f" {unit}" if unit else "")


def compare_addresses(query: StreetAddress, record: StreetAddress, query_raw: str, record_raw: str) -> Agreement:
    if not query.street or not record.street:
        return Agreement(0, None)
    if query.house and record.house and query.house != record.house:
        return Agreement(0, None)  # 123 vs 132 Oak Street are different houses
    if query.postal and record.postal and query.postal[:5] != record.postal[:5]:
        return Agreement(0, None)
    if query.unit and record.unit and query.unit != record.unit:
        return Agreement(40, f"same building, different unit ({query.unit} vs {record.unit})")
    same_text = fold(query_raw) == fold(record_raw)
    if query.street == record.street:
        reason = "address matches" if same_text else f"{query_raw} = {record_raw}"
        return Agreement(100 if query.house else 70, reason)
    ratio = fuzz.ratio(query.street, record.street)
    if ratio >= 80 and query.house:
        return Agreement(int(ratio) - 5, f"address is similar ({query_raw} ~ {record_raw})")
    return Agreement(0, None)
