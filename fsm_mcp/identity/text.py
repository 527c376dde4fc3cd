"""Folding text for comparison: case, accents and punctuation do not matter."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_NON_WORD = re.compile(r"[^\w#]+")


def fold(text: str) -> str:
    """Lower-case, strip accents, turn punctuation into spaces, collapse white space."""
    if text.isascii():  # most text: nothing to decompose (and 3x faster, which a full reindex feels)
        stripped = text
    else:
        decomposed = unicodedata.normalize("NFKD", text)
        stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_NON_WORD.sub(" ", stripped.casefold().replace("'", "")).split())


def tokens(text: str) -> list[str]:
    return fold(text).replace("#", " ").split()


@dataclass(frozen=True, slots=True)
class Agreement:
    """How strongly two values say "same customer", 0-100, and why in words (None: no evidence)."""

    score: int
    reason: str | None
