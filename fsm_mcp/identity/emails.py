"""E-mail addresses compare case-folded and exactly."""

from __future__ import annotations

import re

_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class InvalidEmail(ValueError):
    pass


def normalize_email(raw: str) -> str:
    email = raw.strip().casefold()
    if not _SHAPE.match(email):
        raise InvalidEmail(f"{raw!r} is not an e-mail address; expected name@example.com")
    return email


def try_normalize_email(raw: str | None) -> str | None:
    try:
        return normalize_email(raw) if raw else None
    except InvalidEmail:
        return None
