"""Person names: parsing, nickname equivalence (from the `nicknames` package), comparison."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from nicknames import NickNamer
from rapidfuzz import fuzz

from fsm_mcp.identity.text import Agreement, tokens

_DROP = frozenset({"mr", "mrs", "ms", "miss", "dr", "jr", "sr", "ii", "iii", "iv", "and", "&"})


@dataclass(frozen=True, slots=True)
class PersonName:
    parts: tuple[str, ...]

    @property
    def given(self) -> str:
        return self.parts[0] if self.parts else ""

    @property
    def family(self) -> str:
        return self.parts[-1] if len(self.parts) > 1 else ""

    @property
    def folded(self) -> str:
        return " ".join(self.parts)


def parse_name(raw: str) -> PersonName:
    """"Jenkins, William" and "William Jenkins" both give given=william, family=jenkins."""
    if raw.count(",") == 1:
        family, given = raw.split(",")
        raw = f"{given} {family}"
    parts = [t for t in tokens(raw) if t not in _DROP] or tokens(raw)
    return PersonName(tuple(parts))


@cache
def _namer() -> NickNamer:
    return NickNamer()


@cache
def given_forms(given: str) -> frozenset[str]:
    """The name itself and the formal names it is a nickname of ("bill" -> william, will...)."""
    if len(given) < 2:
        return frozenset({given})
    return frozenset({given, *_namer().canonicals_of(given)})


def nickname_pair(a: str, b: str) -> bool:
    return a != b and bool(given_forms(a) & given_forms(b))


def compare_names(query: PersonName, record: PersonName, query_raw: str, record_raw: str) -> Agreement:
    """How strongly two names say "same person", 0-100, with a reason a person can read."""
    if not query.parts or not record.parts:
        return Agreement(0, None)
    if query.folded == record.folded:
        return Agreement(100, "name matches")
    qg, qf, rg, rf = query.given, query.family, record.given, record.family
    if qf and rf and qg == rf and qf == rg:
        return Agreement(96, "name matches with given and family names swapped")
    if qf and qf == rf:
        if qg == rg:
            return Agreement(97, "name matches (middle name differs)")
        if nickname_pair(qg, rg):
            short, formal = (qg, rg) if len(qg) <= len(rg) else (rg, qg)
            return Agreement(93, f"{short.title()} is a nickname of {formal.title()}")
        if len(qg) == 1 and rg.startswith(qg) or len(rg) == 1 and qg.startswith(rg):
            return Agreement(85, f"initial {min(qg, rg, key=len).upper()}. fits {max(qg, rg, key=len).title()}")
    if not qf and qg in (rg, rf):
        return Agreement(70, f"{qg.title()} matches part of the name")
    if not qf and nickname_pair(qg, rg):
        return Agreement(65, f"{qg.title()} is a nickname of {rg.title()}")
    ratio = int(fuzz.token_sort_ratio(query.folded, record.folded))
    if qf and rf:
        family = fuzz.ratio(qf, rf)
        given_ok = qg == rg or nickname_pair(qg, rg) or fuzz.ratio(qg, rg) >= 80
        if family >= 80 and given_ok:
            ratio = max(ratio, int(min(family, 95) - 7))
    if ratio >= 80:
        return Agreement(ratio, f"name is similar ({query_raw!s} ~ {record_raw!s})")
    return Agreement(ratio, None)
