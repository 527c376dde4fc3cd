"""Merging duplicate customer records into one, as a plan first and, when confirmed, in one transaction.

Everything the merged records own moves to the kept one: service addresses (an address
the kept record already has is folded into it, its jobs and equipment with it), jobs,
invoices, phones, e-mails, notes and tags; their people become contacts of the kept
account (one named as a contact it has is that contact), each keeping their numbers. Merged records stay as pointers
(`merged_into`), so an id an agent still holds keeps working; the identity index drops
them and is rebuilt for the kept record.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from fsm_mcp.connectors.base import MergePlan
from fsm_mcp.directory.customers import load_customer, reindex
from fsm_mcp.errors import InvalidInput
from fsm_mcp.identity.addresses import address_entry, compare_addresses
from fsm_mcp.models import Customer, Location
from fsm_mcp.store import contacts
from fsm_mcp.store.db import placeholders, to_db

SAME_PLACE = 90  # address agreement at which two service addresses are one place


def _same_place(a: Location, b: Location) -> bool:
    (first, first_raw), (second, second_raw) = (
        address_entry(loc.address.street, loc.address.unit, loc.address.postal_code) for loc in (a, b)
    )
    return compare_addresses(first, second, first_raw, second_raw).score >= SAME_PLACE


def _records(conn: sqlite3.Connection, tenant: str, keep_id: str, merge_ids: list[str]) -> tuple[Customer, list[Customer]]:
    keep = load_customer(conn, tenant, keep_id, "keep_id")
    if keep.merged_into:
        raise InvalidInput("keep_id", f"{keep_id} was itself merged into {keep.merged_into}; keep that record instead")
    merged: list[Customer] = []
    for i, merge_id in enumerate(merge_ids):
        field = f"merge_ids[{i}]"
        if merge_id == keep_id:
            raise InvalidInput(field, "is the record being kept; list only the records to fold into it")
        record = load_customer(conn, tenant, merge_id, field)
        if record.merged_into and record.merged_into != keep_id:
            raise InvalidInput(field, f"{merge_id} was already merged into {record.merged_into}; merge into that record")
        if not record.merged_into and all(m.customer_id != merge_id for m in merged):
            merged.append(record)
    return keep, merged


def _count(conn: sqlite3.Connection, table: str, tenant: str, ids: list[str]) -> int:
    if not ids:
        return 0
    return int(conn.execute(f"SELECT count(*) FROM {table} WHERE tenant_id=? AND customer_id IN ({placeholders(len(ids))})",
                            (tenant, *ids)).fetchone()[0])


def merge(
    conn: sqlite3.Connection, tenant: str, keep_id: str, merge_ids: list[str], now: datetime, apply: bool
) -> MergePlan:
    keep, merged = _records(conn, tenant, keep_id, merge_ids)
    ids = [m.customer_id for m in merged]
    places = list(keep.locations)
    moves: list[Location] = []
    folds: list[tuple[Location, Location]] = []  # (merged location, the place it folds into)
    for record in merged:
        for location in record.locations:
            same = next((p for p in places if _same_place(location, p)), None)
            if same is None:
                moves.append(location)
                places.append(location)
            else:
                folds.append((location, same))
    known_phones = {p.number for p in keep.phones}
    known_emails = set(keep.emails)
    phones = list(dict.fromkeys(p.number for m in merged for p in m.phones if p.number not in known_phones))
    emails = list(dict.fromkeys(e for m in merged for e in m.emails if e not in known_emails))
    plan = MergePlan(
        keep=keep, merged=merged, locations_moved=len(moves), locations_combined=len(folds),
        jobs_moved=_count(conn, "jobs", tenant, ids), invoices_moved=_count(conn, "invoices", tenant, ids),
        phones_added=phones, emails_added=emails, applied=apply and bool(merged),
    )
    if plan.applied:
        _apply(conn, tenant, keep, merged, moves, folds, to_db(now))
        plan = plan.model_copy(update={"keep": load_customer(conn, tenant, keep_id, "keep_id"),
                                       "merged": [load_customer(conn, tenant, i) for i in ids]})
    return plan


def _apply(
    conn: sqlite3.Connection, tenant: str, keep: Customer, merged: list[Customer],
    moves: list[Location], folds: list[tuple[Location, Location]], stamp: str,
) -> None:
    keep_id, ids = keep.customer_id, [m.customer_id for m in merged]
    marks, scope = placeholders(len(ids)), (tenant, *ids)
    for location in moves:
        conn.execute("UPDATE locations SET customer_id=? WHERE tenant_id=? AND id=?", (keep_id, tenant, location.location_id))
    gathered: dict[str, tuple[list[dict[str, str]], str | None]] = {}  # place id -> (equipment, access notes)
    for location, into in folds:
        equipment, access = gathered.get(
            into.location_id, ([e.model_dump(exclude_none=True) for e in into.equipment], into.access_notes))
        equipment += [e for e in (x.model_dump(exclude_none=True) for x in location.equipment) if e not in equipment]
        gathered[into.location_id] = (equipment, access or location.access_notes)
        conn.execute("UPDATE jobs SET location_id=? WHERE tenant_id=? AND location_id=?", (into.location_id, tenant, location.location_id))
        conn.execute("DELETE FROM locations WHERE tenant_id=? AND id=?", (tenant, location.location_id))
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
    for table in ("customer_phones", "customer_emails", "match_keys"):
        conn.execute(f"DELETE FROM {table} WHERE tenant_id=? AND customer_id IN ({marks})", scope)
    contacts.fold(conn, tenant, keep_id, ids)
    notes = list(dict.fromkeys(n for n in [keep.notes, *(m.notes for m in merged)] if n))
    tags = list(dict.fromkeys([*keep.tags, *(t for m in merged for t in m.tags)]))
    conn.execute(
        "UPDATE customers SET notes=?, tags=?, updated_at=? WHERE tenant_id=? AND id=?",
        ("\n".join(notes) or None, json.dumps(tags), stamp, tenant, keep_id),
    )
    conn.execute(
        f"UPDATE customers SET merged_into=?, updated_at=? WHERE tenant_id=? AND (id IN ({marks}) OR merged_into IN ({marks}))",
        (keep_id, stamp, tenant, *ids, *ids),
    )
    reindex(conn, tenant, [keep_id])
