"""Merging duplicate customer records into one, as a plan first and, when confirmed, in one transaction.

Everything the merged records own moves to the kept one: service addresses (an address
the kept record already has is folded into it, its jobs and equipment with it), jobs,
invoices, phones, e-mails, notes and tags; their people become contacts of the kept
account (one named as a contact it has is that contact), each keeping their numbers. Merged records stay as pointers
(`merged_into`), so an id an agent still holds keeps working; the identity index drops
them and is rebuilt for the kept record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fsm_mcp.directory.customers import load_customer, reindex
from fsm_mcp.errors import InvalidInput
from fsm_mcp.identity.addresses import address_entry, compare_addresses
from fsm_mcp.models import Customer, Location
from fsm_mcp.results import MergePlan
from fsm_mcp.store import merges
from fsm_mcp.store.db import to_db

SAME_PLACE = 90  # address agreement at which two service addresses are one place


def _same_place(a: Location, b: Location) -> bool:
    (first, first_raw), (second, second_raw) = (
        address_entry(loc.address.street, loc.address.unit, loc.address.postal_code) for loc in (a, b)
    )
    return compare_addresses(first, second, first_raw, second_raw).score >= SAME_PLACE


def _records(conn: Any, tenant: str, keep_id: str, merge_ids: list[str]) -> tuple[Customer, list[Customer]]:
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


def merge(
    conn: Any, tenant: str, keep_id: str, merge_ids: list[str], now: datetime, apply: bool
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
        jobs_moved=merges.count_owned(conn, "jobs", tenant, ids),
        invoices_moved=merges.count_owned(conn, "invoices", tenant, ids),
        phones_added=phones, emails_added=emails, applied=apply and bool(merged),
    )
    if plan.applied:
        _apply(conn, tenant, keep, merged, moves, folds, to_db(now))
        plan = plan.model_copy(update={"keep": load_customer(conn, tenant, keep_id, "keep_id"),
                                       "merged": [load_customer(conn, tenant, i) for i in ids]})
    return plan


def _apply(
    conn: Any, tenant: str, keep: Customer, merged: list[Customer],
    moves: list[Location], folds: list[tuple[Location, Location]], stamp: str,
) -> None:
    gathered: dict[str, tuple[list[dict[str, str]], str | None]] = {}  # place id -> (equipment, access notes)
    for location, into in folds:
        equipment, access = gathered.get(
            into.location_id, ([e.model_dump(exclude_none=True) for e in into.equipment], into.access_notes))
        equipment += [e for e in (x.model_dump(exclude_none=True) for x in location.equipment) if e not in equipment]
        gathered[into.location_id] = (equipment, access or location.access_notes)
    notes = list(dict.fromkeys(n for n in [keep.notes, *(m.notes for m in merged)] if n))
    tags = list(dict.fromkeys([*keep.tags, *(t for m in merged for t in m.tags)]))
    merges.apply(conn, tenant, keep.customer_id, [m.customer_id for m in merged], [m.location_id for m in moves],
                 [(location.location_id, into.location_id) for location, into in folds], gathered,
                 "\n".join(notes) or None, tags, stamp)
    reindex(conn, tenant, [keep.customer_id])
