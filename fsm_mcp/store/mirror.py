"""The SQL of a vendor's customers mirrored in the directory: upserts by the vendor's own ids (see
`directory/mirror.py`, which keeps their identity keys current).

A record read twice (equal timestamps are re-read on purpose) is simply written twice. A contact keeps its
vendor id, so a number changed at the vendor replaces the old one instead of piling up.

A page is written a table at a time (`executemany`: on PostgreSQL one pipelined round trip, not a statement
each), its owners and earlier contacts read in one query each: row by row, a sync's page of 100 cost 50-150 ms
on PostgreSQL on a busy machine, and every replica's writes queue on one lock. A page whose contacts moved
(a number changed, a contact id met twice) is written one contact after another, exactly as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from fsm_mcp.models import Address
from fsm_mcp.store.contacts import PRIMARY
from fsm_mcp.store.db import placeholders, to_db


@dataclass(frozen=True, slots=True)
class MirroredCustomer:
    id: str
    name: str
    created: datetime | None  # None: the vendor did not say; the sync's own time stands in
    merged_into: str | None = None


@dataclass(frozen=True, slots=True)
class MirroredLocation:
    id: str
    customer_id: str
    address: Address
    created: datetime | None


@dataclass(frozen=True, slots=True)
class MirroredContact:
    id: str
    kind: Literal["phone", "email"]
    value: str  # E.164 or a normalised e-mail
    customer_id: str | None = None
    location_id: str | None = None  # a location's contact belongs to that location's customer
    person_id: str | None = None  # the vendor's person this number or e-mail is of; None: the customer's own
    person: str | None = None  # that person's name


_TABLES = {"phone": ("customer_phones", "e164"), "email": ("customer_emails", "email")}


def write(
    conn: Any, tenant: str, now: datetime, customers: Iterable[MirroredCustomer] = (),
    locations: Iterable[MirroredLocation] = (), contacts: Iterable[MirroredContact] = (),
) -> set[str]:
    """Write these records; returns the ids of the customers they touch."""
    touched: set[str] = set()
    stamp = to_db(now)
    customers, locations, contacts = list(customers), list(locations), list(contacts)
    conn.executemany(
        "INSERT INTO customers (tenant_id, id, name, merged_into, created_at, updated_at) VALUES (?,?,?,?,?,?) "
        "ON CONFLICT (tenant_id, id) DO UPDATE SET name=excluded.name, merged_into=excluded.merged_into, "
        "updated_at=excluded.updated_at",
        [(tenant, c.id, c.name.strip() or "(no name)", c.merged_into, to_db(c.created) if c.created else stamp, stamp)
         for c in customers],
    )
    _people(conn, [(tenant, primary(c.id), c.id, c.name.strip() or "(no name)", PRIMARY, stamp) for c in customers])
    touched.update(c.id for c in customers)
    conn.executemany(
        "INSERT INTO locations (tenant_id, id, customer_id, street, unit, city, state, postal_code, country, created_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (tenant_id, id) DO UPDATE SET customer_id=excluded.customer_id, "
        "street=excluded.street, unit=excluded.unit, city=excluded.city, state=excluded.state, "
        "postal_code=excluded.postal_code, country=excluded.country",
        [(tenant, loc.id, loc.customer_id, loc.address.street, loc.address.unit, loc.address.city, loc.address.state,
          loc.address.postal_code, loc.address.country, to_db(loc.created) if loc.created else stamp) for loc in locations],
    )
    touched.update(loc.customer_id for loc in locations)
    if contacts:
        touched |= _contacts(conn, tenant, contacts, stamp)
    return touched


def _contacts(conn: Any, tenant: str, contacts: list[MirroredContact], stamp: str) -> set[str]:
    """Write a page's contacts a table at a time; one after another where any moved (see the module's note)."""
    owners = _by_id(conn, "SELECT id, customer_id FROM locations WHERE tenant_id=? AND id IN ({})", tenant,
                    {c.location_id for c in contacts if c.customer_id is None and c.location_id is not None})
    placed = [(c, owner) for c in contacts
              if (owner := c.customer_id if c.customer_id is not None else owners.get(c.location_id)) is not None]
    earlier = _by_id(conn, "SELECT contact_id, customer_id, kind, value FROM vendor_contacts WHERE tenant_id=? "
                     "AND contact_id IN ({})", tenant, {c.id for c, _ in placed}, whole=True)
    if len({c.id for c, _ in placed}) < len(placed) or any(
            (old := earlier.get(c.id)) is not None and tuple(old) != (owner, c.kind, c.value) for c, owner in placed):
        for c, _ in placed:
            if (owner := _owner(conn, tenant, c)) is not None:
                _contact(conn, tenant, owner, c, stamp)
        return {owner for _, owner in placed}
    conn.executemany("INSERT INTO vendor_contacts (tenant_id, contact_id, customer_id, kind, value) VALUES (?,?,?,?,?) "
                     "ON CONFLICT (tenant_id, contact_id) DO UPDATE SET customer_id=excluded.customer_id, "
                     "kind=excluded.kind, value=excluded.value",
                     [(tenant, c.id, owner, c.kind, c.value) for c, owner in placed])
    _people(conn, [(tenant, f"con_{c.person_id}", owner, (c.person or "").strip() or "(no name)", None, stamp)
                   for c, owner in placed if c.person_id is not None])
    for kind, (table, column) in _TABLES.items():
        conn.executemany(f"INSERT INTO {table} (tenant_id, customer_id, {column}, contact_id) VALUES (?,?,?,?) "
                         f"ON CONFLICT (tenant_id, customer_id, {column}) DO UPDATE SET contact_id=excluded.contact_id",
                         [(tenant, owner, c.value, primary(owner) if c.person_id is None else f"con_{c.person_id}")
                          for c, owner in placed if c.kind == kind])
    return {owner for _, owner in placed}


def _by_id(conn: Any, sql: str, tenant: str, ids: set[Any], whole: bool = False) -> dict[Any, Any]:
    """{first column: the second (or, `whole`, the rest)} of `sql`'s rows for these ids, 500 to a query."""
    found: dict[Any, Any] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start:start + 500]
        for row in conn.execute(sql.format(placeholders(len(chunk))), (tenant, *chunk)):
            found[row[0]] = tuple(row[1:]) if whole else row[1]
    return found


def _people(conn: Any, rows: list[tuple[str, str, str, str, str | None, str]]) -> None:
    """(tenant, contact id, customer id, name, role, stamp) of each person to write."""
    conn.executemany("INSERT INTO contacts (tenant_id, id, customer_id, name, role, created_at) VALUES (?,?,?,?,?,?) "
                     "ON CONFLICT (tenant_id, id) DO UPDATE SET customer_id=excluded.customer_id, name=excluded.name",
                     rows)


def _owner(conn: Any, tenant: str, contact: MirroredContact) -> str | None:
    if contact.customer_id is not None:
        return contact.customer_id
    row = conn.execute("SELECT customer_id FROM locations WHERE tenant_id=? AND id=?", (tenant, contact.location_id)).fetchone()
    return str(row[0]) if row else None  # a location not synced yet: its contacts come again with it


def _contact(conn: Any, tenant: str, owner: str, contact: MirroredContact, stamp: str) -> None:
    old = conn.execute("SELECT customer_id, kind, value FROM vendor_contacts WHERE tenant_id=? AND contact_id=?",
                       (tenant, contact.id)).fetchone()
    if old is not None and (old[0], old[1], old[2]) != (owner, contact.kind, contact.value):
        conn.execute("DELETE FROM vendor_contacts WHERE tenant_id=? AND contact_id=?", (tenant, contact.id))
        still_held = conn.execute(
            "SELECT 1 FROM vendor_contacts WHERE tenant_id=? AND customer_id=? AND kind=? AND value=?", (tenant, *old)
        ).fetchone()
        if not still_held:
            table, column = _TABLES[old[1]]
            conn.execute(f"DELETE FROM {table} WHERE tenant_id=? AND customer_id=? AND {column}=?", (tenant, old[0], old[2]))
    conn.execute("INSERT INTO vendor_contacts (tenant_id, contact_id, customer_id, kind, value) VALUES (?,?,?,?,?) "
                 "ON CONFLICT (tenant_id, contact_id) DO UPDATE SET customer_id=excluded.customer_id, kind=excluded.kind, value=excluded.value",
                 (tenant, contact.id, owner, contact.kind, contact.value))
    person = primary(owner)
    if contact.person_id is not None:  # a person of the vendor's own (a FieldPulse customer contact)
        person = f"con_{contact.person_id}"
        _person(conn, tenant, owner, person, (contact.person or "").strip() or "(no name)", None, stamp)
    table, column = _TABLES[contact.kind]
    conn.execute(f"INSERT INTO {table} (tenant_id, customer_id, {column}, contact_id) VALUES (?,?,?,?) "
                 f"ON CONFLICT (tenant_id, customer_id, {column}) DO UPDATE SET contact_id=excluded.contact_id",
                 (tenant, owner, contact.value, person))


def primary(customer_id: str) -> str:
    """The id of the contact a mirrored customer has from the start, named as the customer."""
    return f"con_{customer_id}"


def _person(conn: Any, tenant: str, customer_id: str, contact_id: str, name: str, role: str | None,
            stamp: str) -> None:
    conn.execute("INSERT INTO contacts (tenant_id, id, customer_id, name, role, created_at) VALUES (?,?,?,?,?,?) "
                 "ON CONFLICT (tenant_id, id) DO UPDATE SET customer_id=excluded.customer_id, name=excluded.name",
                 (tenant, contact_id, customer_id, name, role, stamp))
