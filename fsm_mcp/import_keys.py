"""How an import knows a row again on a rerun, and which files it refuses for naming a record twice.

A row's import key is a digest of its cells (trimmed, inner runs of spaces made one, Unicode NFC, in the
columns' fixed order, so a re-export with its columns reordered gives the same keys) and its place among
the identical rows before it in its file: the first of two identical rows is `<digest>.0`, the second
`<digest>.1`. A committed part of an interrupted import is a prefix of its file, so its rows get the keys
the whole file gives them, and running the file again imports exactly the rest. Two identical rows stay two
records, as the importer keeps records as they are; a row identical to one an earlier file imported is
taken as that row.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable


class RowKeys:
    """Import keys for the rows of one file, given in file order."""

    def __init__(self, columns: tuple[str, ...]) -> None:
        self.columns = columns
        self._before: dict[bytes, int] = {}  # identical rows seen so far, by digest

    def key(self, row: dict[str, str]) -> str:
        digest = hashlib.blake2b(_text([row.get(column, "") for column in self.columns]).encode(), digest_size=16).digest()
        place = self._before.get(digest, 0)
        self._before[digest] = place + 1
        return f"{digest.hex()}.{place}"


def _normal(text: str) -> str:
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


def _text(cells: list[str]) -> str:
    """The cells as one text that only rows with the same normalised cells share (the whole row at once: a
    million rows cell by cell cost seconds)."""
    text = "\x00".join(cells)
    if text.count("\x00") == len(cells) - 1:
        return _normal(text)  # NUL is no space: the normal form keeps the boundaries
    # A cell holds a NUL itself: each cell with its length, after more NULs than a joined row ever has.
    return "\x00" * len(cells) + "".join(f"{len(n)}:{n}" for n in map(_normal, cells))


def repeated_external_ids(rows: Iterable[tuple[int, dict[str, str]]]) -> list[tuple[str, int, int]]:
    """(external_id, the line it is first on, a later line naming it again) for each repeat, in file order."""
    first: dict[str, int] = {}
    repeats = []
    for line, row in rows:
        external_id = row.get("external_id")
        if external_id and (earlier := first.setdefault(external_id, line)) != line:
            repeats.append((external_id, earlier, line))
    return repeats
