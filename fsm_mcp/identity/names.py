"""Person names: parsing, nickname equivalence (from the `nicknames` package), comparison."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import jellyfish
from nicknames import NickNamer
from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

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


_OCR = str.maketrans({"0": "o", "1": "l", "5": "s", "8": "b"})


def _ocr(word: str) -> str:
    """The letters a scan or a hurried typist confuses, read one way: rn/m, vv/w, cl/d, 0/o, 1/l."""
    return word.replace("rn", "m").replace("vv", "w").replace("cl", "d").translate(_OCR)


@cache
def sound(word: str) -> str:
    """How a word sounds (Metaphone): "cono" and "kono" alike, for blocking and comparing."""
    return jellyfish.metaphone(word) or word


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
        # Each part must agree on its own: a shared surname does not make Charles and Carlos one person.
        def part(a: str, b: str) -> float:
            if a == b or nickname_pair(a, b):
                return 100.0
            if _ocr(a) == _ocr(b):
                return 90.0
            if min(len(a), len(b)) >= 5:  # one slip keeps a long name at 80+; below that it is another name
                found = fuzz.ratio(a, b)
                return found if found >= 80 else min(found, 69.0)
            # In a short name one slip is weaker evidence (Jean and Joan are two people); Jon/Joan not at all.
            return 78.0 if min(len(a), len(b)) >= 4 and Levenshtein.distance(a, b) == 1 else 0.0

        weakest = max(min(part(qg, rg), part(qf, rf)), min(part(qg, rf), part(qf, rg)))
        ratio = int(min(weakest, 89)) if weakest >= 80 else int(min(ratio, weakest))
    if ratio >= 80:
        return Agreement(ratio, f"name is similar ({query_raw!s} ~ {record_raw!s})")
    if ratio >= 70:
        return Agreement(ratio, f"name is close ({query_raw!s} ~ {record_raw!s})")
    return Agreement(ratio, None)
