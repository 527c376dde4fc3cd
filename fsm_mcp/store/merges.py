"""The rows a customer merge moves (see connectors/local/merge.py for what it decides): the merged records'
places, jobs, invoices, phones and e-mails onto the kept record, the merged ones left pointing at it."""

from __future__ import annotations

import json
from typing import Any

from fsm_mcp.store import contacts
from fsm_mcp.store.db import placeholders


def count_owned(conn: Any, table: str, tenant: str, ids: list[str]) -> int:
    """Rows of `table` (jobs, invoices) that these customers own."""
    if not ids:
        return 0
    return int(conn.execute(f"SELECT count(*) FROM {table} WHERE tenant_id=? AND customer_id IN ({placeholders(len(ids))})",
                            (tenant, *ids)).fetchone()[0])


def apply(
    conn: Any, tenant: str, keep_id: str, ids: list[str], moved: list[str], folded: list[tuple[str, str]],
    gathered: dict[str, tuple[list[dict[str, str]], str | None]], notes: str | None, tags: list[str], stamp: str,
) -> None:
    """`moved`: place ids that go to the kept record; `folded`: (place id, the kept place it is) whose jobs move to
    the kept place before it goes; `gathered`: each kept place's equipment and access notes after the fold."""
    marks, scope = placeholders(len(ids)), (tenant, *ids)
    for place_id in moved:
        conn.execute("UPDATE locations SET customer_id=? WHERE tenant_id=? AND id=?", (keep_id, tenant, place_id))
    for place_id, into_id in folded:
        conn.execute("UPDATE jobs SET location_id=? WHERE tenant_id=? AND location_id=?", (into_id, tenant, place_id))
        conn.execute("DELETE FROM locations WHERE tenant_id=? AND id=?", (tenant, place_id))
    for place_id, (equipment, access) in gathered.items():
        conn.execute("UPDATE locations SET equipment=?, access_notes=? WHERE tenant_id=? AND id=?",
                     (json.dumps(equipment), access, tenant, place_id))
    for table in ("jobs", "invoices"):
        conn.execute(f"UPDATE {table} SET customer_id=? WHERE tenant_id=? AND customer_id IN ({marks})", (keep_id, *scope))
    for table, columns in (("customer_phones", "e164, extension"), ("customer_emails", "email")):
        key = columns.split(",")[0]  # a number the kept record holds stays whose it is, or becomes the merged person's
        conn.execute(  # WHERE true: SQLite's parser needs it before ON CONFLICT
            f"INSERT INTO {table} (tenant_id, customer_id, {columns}, contact_id) "
            f"SELECT tenant_id, ?, {columns}, contact_id FROM {table} WHERE tenant_id=? AND customer_id IN ({marks}) "
            f"AND true ON CONFLICT (tenant_id, customer_id, {key}) DO UPDATE SET "
            f"contact_id = COALESCE({table}.contact_id, excluded.contact_id)",
            (keep_id, *scope),
        )
    for table in ("customer_phones", "customer_emails", "match_keys", "match_keys_pending"):
        conn.execute(f"DELETE FROM {table} WHERE tenant_id=? AND customer_id IN ({marks})", scope)
    contacts.fold(conn, tenant, keep_id, ids)
    conn.execute("UPDATE customers SET notes=?, tags=?, updated_at=? WHERE tenant_id=? AND id=?",
                 (notes, json.dumps(tags), stamp, tenant, keep_id))
    conn.execute(
        f"UPDATE customers SET merged_into=?, updated_at=? WHERE tenant_id=? AND (id IN ({marks}) OR merged_into IN ({marks}))",
        (keep_id, stamp, tenant, *ids, *ids),
    )
