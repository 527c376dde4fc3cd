"""The SQL of a vendor's customers mirrored in the directory: upserts by the vendor's own ids (see
`directory/mirror.py`, which keeps their identity keys current).

A record read twice (equal timestamps are re-read on purpose) is simply written twice. A contact keeps its
vendor id, so a number changed at the vendor replaces the old one instead of piling up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from fsm_mcp.models import Address
from fsm_mcp.store.contacts import PRIMARY
from fsm_mcp.store.db import to_db


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
    for c in customers:
        conn.execute(
            "INSERT INTO customers (tenant_id, id, name, merged_into, created_at, updated_at) VALUES (?,?,?,?,?,?) "
            "ON CONFLICT (tenant_id, id) DO UPDATE SET name=excluded.name, merged_into=excluded.merged_into, "
            "updated_at=excluded.updated_at",
            (tenant, c.id, c.name.strip() or "(no name)", c.merged_into, to_db(c.created) if c.created else stamp, stamp),
        )
        _person(conn, tenant, c.id, primary(c.id), c.name.strip() or "(no name)", PRIMARY, stamp)
        touched.add(c.id)
    for loc in locations:
        a = loc.address
        conn.execute(
            "INSERT INTO locations (tenant_id, id, customer_id, street, unit, city, state, postal_code, country, created_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (tenant_id, id) DO UPDATE SET customer_id=excluded.customer_id, "
            "street=excluded.street, unit=excluded.unit, city=excluded.city, state=excluded.state, "
            "postal_code=excluded.postal_code, country=excluded.country",
            (tenant, loc.id, loc.customer_id, a.street, a.unit, a.city, a.state, a.postal_code, a.country,
             to_db(loc.created) if loc.created else stamp),
        )
        touched.add(loc.customer_id)
    for contact in contacts:
        if (owner := _owner(conn, tenant, contact)) is not None:
            _contact(conn, tenant, owner, contact, stamp)
            touched.add(owner)
    return touched


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
