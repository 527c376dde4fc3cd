"""The answers an accounting vendor keeps per idempotency key (QuickBooks `requestid`, Xero
`Idempotency-Key`), per company: the same key again gets the first answer back without the
write being done twice, also when that first answer never reached the client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Replays:
    longest: int  # characters a key may have
    answers: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    replayed: int = 0

    def too_long(self, key: str) -> bool:
        return len(key) > self.longest

    def first(self, tenant: str, key: str) -> tuple[int, Any] | None:
        found = self.answers.get((tenant, key))
        if found is not None:
            self.replayed += 1
        return found

    def keep(self, tenant: str, key: str, status: int, body: Any) -> None:
        self.answers[(tenant, key)] = (status, body)
