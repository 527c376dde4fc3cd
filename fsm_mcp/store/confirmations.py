"""The confirmation tokens' rows, each by its digest (see access/confirm.py for what a token confirms)."""

from __future__ import annotations

from typing import Any


def insert(conn: Any, tenant: str, digest: str, tool: str, args_hash: str, actor: str, expires: str,
           stale_before: str) -> None:
    conn.execute("DELETE FROM confirmations WHERE tenant_id = ? AND expires_at < ?", (tenant, stale_before))  # keep it small
    conn.execute("INSERT INTO confirmations (tenant_id, digest, tool, args_hash, actor, expires_at) VALUES (?,?,?,?,?,?)",
                 (tenant, digest, tool, args_hash, actor, expires))


def find(conn: Any, tenant: str, digest: str) -> tuple[str, str, str, str, str | None] | None:
    """(tool, args_hash, actor, expires_at, used_at), or None."""
    row = conn.execute("SELECT tool, args_hash, actor, expires_at, used_at FROM confirmations "
                       "WHERE tenant_id = ? AND digest = ?", (tenant, digest)).fetchone()
    return tuple(row) if row is not None else None


def mark_used(conn: Any, tenant: str, digest: str, at: str | None) -> None:
    """`at` None gives the token back."""
    conn.execute("UPDATE confirmations SET used_at = ? WHERE tenant_id = ? AND digest = ?", (at, tenant, digest))
