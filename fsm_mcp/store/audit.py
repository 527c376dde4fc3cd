"""The audit log: every write, who made it, with personal data and secrets redacted."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from fsm_mcp.access.pii import PERSONAL, Personal
from fsm_mcp.store.db import to_db

SECRET = frozenset({"token", "password", "secret", "api_key", "authorization", "client_secret"})


def redact(value: Any, key: str = "") -> Any:
    """`value` with secrets and every personal field (`fsm_mcp.access.pii.PERSONAL`) redacted; a phone number keeps
    its last two digits, enough to tell two calls apart and too few to call anyone."""
    if key in SECRET:
        return "[secret]"
    if key in PERSONAL and value is not None:
        if PERSONAL[key] is Personal.CONTACT and isinstance(value, list):
            return [redact(v, key) for v in value]
        if PERSONAL[key] is Personal.CONTACT and isinstance(value, str) and "@" not in value:
            digits = "".join(ch for ch in value if ch.isdigit())
            return f"***{digits[-2:]}" if len(digits) >= 4 else "[redacted]"
        return "[redacted]"
    if isinstance(value, dict):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    return value


def record(
    conn: sqlite3.Connection,
    at: datetime,
    tenant: str,
    tool: str,
    actor: str,
    arguments: dict[str, Any],
    result_id: str | None,
    replayed: bool = False,
) -> None:
    conn.execute(
        "INSERT INTO audit_log (at, tenant_id, tool, actor, arguments, result_id, replayed) VALUES (?,?,?,?,?,?,?)",
        (to_db(at), tenant, tool, actor, json.dumps(redact(arguments), default=str), result_id, int(replayed)),
    )
