"""Personal data: the one list of the fields that hold it, and what each place that shows or keeps data does with it.

- An answer to a caller without `pii:read` has its phone numbers and e-mails masked (`***-***-0188`,
  `m***@example.com`) and its access notes (gate codes, alarm codes, where the key is) left out. Names, addresses and
  what people wrote stay: a call cannot go on without them.
- The audit log keeps none of them (`fsm_mcp.store.audit`): it says who did what, not to whom.
- Logs keep none of them, at any level (`keep_out_of_logs`).

Masking and the audit log work on field names, so a new answer or request with a `phones` or `summary` field is
covered without a change here."""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


class Personal(StrEnum):
    CONTACT = "contact"  # a phone number or an e-mail: masked for callers without pii:read
    WITHHELD = "withheld"  # left out for callers without pii:read
    SAID = "said"  # who or where someone is, or what a person wrote: every caller sees it, a call needs it


PERSONAL: Mapping[str, Personal] = MappingProxyType({
    **dict.fromkeys(("phone", "phones", "number", "caller_phone", "email", "emails", "contacts_added", "phones_added",
                     "emails_added"), Personal.CONTACT),
    "access_notes": Personal.WITHHELD,
    **dict.fromkeys(("name", "customer_name", "address", "street", "unit", "notes", "note", "summary", "reason",
                     "outcome", "description"), Personal.SAID),
})

CONTACTS = frozenset(k for k, kind in PERSONAL.items() if kind is Personal.CONTACT)
WITHHELD = frozenset(k for k, kind in PERSONAL.items() if kind is Personal.WITHHELD)


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


# The SDK's logger of tool calls. It logs a refused call with the whole message the agent reads, which quotes what
# the caller sent and what the store holds (`Tool 'create_job' failed: '... Candidates: cus_1 Jane Doe (... 12 Elm
# St)'`), and a crash with its exception's text (a pydantic error quotes the values it refused).
SDK_TOOL_LOGGER = "mcp.server.mcpserver.server"
_FAILED = frozenset({"Tool %r failed: %r", "Resource %r failed: %r"})
# What our own messages open with: the field at fault, as the schema names it (`customer.address.street: ...`).
_FIELD = re.compile(r"(?:Error executing tool [\w-]+: )?([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+|\[\d+\])*): ")
WITHHELD_TEXT = "message withheld: it may quote personal data"


class KeepPersonalDataOut(logging.Filter):
    """Rewrites the SDK's log lines of failed calls and crashes so that they name the tool, the field at fault and
    the exception types, never a message's text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in _FAILED and isinstance(record.args, tuple) and len(record.args) == 2:
            name, said = record.args
            field = _FIELD.match(str(said))  # its characters cannot be a % directive
            where = f" on {field.group(1)}" if field else ""
            record.msg = f"{str(record.msg).split(' ', 1)[0]} %r failed{where} ({WITHHELD_TEXT})"
            record.args = (name,)
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = _traceback_without_messages(record.exc_info[1])
            record.exc_info = None
        return True


def _traceback_without_messages(exc: BaseException) -> str:
    """The traceback as Python prints it, each exception of the chain named by its type only."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    parts = []
    for one in reversed(chain):
        kind = type(one)
        parts.append("Traceback (most recent call last):\n" + "".join(traceback.format_tb(one.__traceback__))
                     + f"{kind.__module__}.{kind.__qualname__} ({WITHHELD_TEXT})")
    return "\n\nwhich led to\n\n".join(parts)


def keep_out_of_logs() -> None:
    """Install the filter on the SDK's tool logger, once per process: a filter on that logger sees its records
    whichever handlers an operator configures (stderr, a file, a log shipper), at every level."""
    logger = logging.getLogger(SDK_TOOL_LOGGER)
    if not any(isinstance(f, KeepPersonalDataOut) for f in logger.filters):
        logger.addFilter(KeepPersonalDataOut())
