"""Person names: parsing, nickname equivalence (from the `nicknames` package), how a name sounds."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache

import jellyfish
from nicknames import NickNamer

from fsm_mcp.identity.text import tokens

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


@lru_cache(maxsize=1 << 16)
def ocr_form(word: str) -> str:
    """The letters a scan or a hurried typist confuses, read one way: rn/m, vv/w, cl/d, 0/o, 1/l."""
    return word.replace("rn", "m").replace("vv", "w").replace("cl", "d").translate(_OCR)


@cache
def sound(word: str) -> str:
    """How a word sounds (Metaphone): "cono" and "kono" alike, for blocking and comparing."""
    return jellyfish.metaphone(word) or word


def nickname_pair(a: str, b: str) -> bool:
    """One is a nickname of the other (Bill, William). Not two names that share a nickname: the
    nicknames data gives "bill" to Robert as well as William, and Robert is not William."""
    return a != b and (b in given_forms(a) or a in given_forms(b))
