"""Personal data for callers without `pii:read`: phone numbers and e-mails masked
(`***-***-0188`, `m***@example.com`), access notes (gate codes, alarm codes, where the key is)
left out. Names and addresses stay: a call cannot go on without them.

It works on the field names of the tools' answers, so a new answer with a `phones` or
`access_notes` field is covered without a change here."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

CONTACTS = frozenset({"phone", "phones", "number", "email", "emails", "contacts_added", "phones_added", "emails_added"})
WITHHELD = frozenset({"access_notes"})


def mask_contact(value: str) -> str:
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    digits = [ch for ch in value if ch.isdigit()]
    return "***-***-" + "".join(digits[-4:]) if len(digits) >= 4 else "***"


def masked(result: M) -> M:
    """A copy of `result` fit for a caller without `pii:read`."""
    return type(result).model_validate(_walk(result.model_dump(), ""))


def _walk(value: Any, key: str) -> Any:
    if key in WITHHELD:
        return None
    if isinstance(value, dict):
        return {k: _walk(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, key) for v in value]
    if key in CONTACTS and isinstance(value, str):
        return mask_contact(value)
    return value
