"""The API keys' rows: each key by its digest, a name unique among the live keys (see access/keys.py)."""

from __future__ import annotations

from typing import Any

LIVE_BY_DIGEST = "SELECT name, tenant_id, scopes FROM api_keys WHERE digest = ? AND revoked_at IS NULL"


def insert(conn: Any, name: str, business: str, scopes: str, digest: str, at: str) -> bool:
    """False (and nothing written) when a live key has that name."""
    if conn.execute("SELECT 1 FROM api_keys WHERE name = ? AND revoked_at IS NULL", (name,)).fetchone():
        return False
    conn.execute("INSERT INTO api_keys (name, tenant_id, scopes, digest, created_at) VALUES (?,?,?,?,?)",
                 (name, business, scopes, digest, at))
    return True


def revoke(conn: Any, name: str, at: str) -> bool:
    """True when a live key of that name was revoked."""
    return bool(conn.execute("UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                             (at, name)).rowcount == 1)


def every(conn: Any) -> list[tuple[str, str, str, str, str | None]]:
    rows = conn.execute("SELECT name, tenant_id, scopes, created_at, revoked_at FROM api_keys ORDER BY name, created_at")
    return [tuple(r) for r in rows.fetchall()]
