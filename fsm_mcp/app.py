"""What a running server holds: every business it serves over one store, each with its
settings, its backend and its write guard."""

from __future__ import annotations

from dataclasses import dataclass

from fsm_mcp.access.callers import Caller
from fsm_mcp.access.confirm import Confirmations
from fsm_mcp.clock import Clock
from fsm_mcp.connectors.base import Backend
from fsm_mcp.settings import Settings
from fsm_mcp.store.db import Database
from fsm_mcp.store.idempotency import IdempotentWriter


@dataclass(slots=True)
class App:
    """One business, as its tools see it."""

    settings: Settings
    db: Database
    backend: Backend
    clock: Clock
    writer: IdempotentWriter
    confirmations: Confirmations


@dataclass(slots=True)
class Served:
    businesses: dict[str, App]
    default: str

    def of(self, caller: Caller) -> App:
        """The caller's business. A caller is bound to one; the gate refuses one not served here."""
        return self.businesses[caller.business or self.default]
