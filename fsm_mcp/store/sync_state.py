"""How far a vendor directory sync got, per list (`resource`): a first walk's next page and start, the newest
modification time stored, the cursor of later syncs (see connectors/sync.py)."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


def load(conn: Any, tenant: str, resource: str) -> Json:
    row = conn.execute("SELECT * FROM sync_state WHERE tenant_id=? AND resource=?", (tenant, resource)).fetchone()
    return dict(row) if row else {"cursor": None, "full_done": 0, "next_page": 1, "started_at": None, "newest": None}


def save(conn: Any, tenant: str, resource: str, changes: Json) -> None:
    """Set these columns (any of full_done, cursor, next_page, started_at, newest); nothing when none."""
    if not changes:
        return
    conn.execute("INSERT INTO sync_state (tenant_id, resource) VALUES (?, ?) ON CONFLICT DO NOTHING", (tenant, resource))
    sets = ", ".join(f"{k}=?" for k in changes)
    conn.execute(f"UPDATE sync_state SET {sets} WHERE tenant_id=? AND resource=?", (*changes.values(), tenant, resource))
