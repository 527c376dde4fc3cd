"""What a running server holds: settings, the database, the backend, the write guard."""

from __future__ import annotations

from dataclasses import dataclass

from fsm_mcp.connectors.base import Backend
from fsm_mcp.settings import Settings
from fsm_mcp.store.db import Database
from fsm_mcp.store.idempotency import IdempotentWriter


@dataclass(slots=True)
class App:
    settings: Settings
    db: Database
    backend: Backend
    writer: IdempotentWriter
