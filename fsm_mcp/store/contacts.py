"""Contacts: the people of an account (a customer), and which of them each phone and e-mail belongs to.

A number or e-mail with no contact_id is the account's own (a line learned before anyone was named on it).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime

from fsm_mcp.identity.contacts import same_person
from fsm_mcp.identity.names import parse_name
from fsm_mcp.models import Contact
from fsm_mcp.store.db import new_id, placeholders, to_db

PRIMARY = "owner"  # the role of the contact a customer is created with, named as the customer


def insert_contacts(conn: sqlite3.Connection, tenant: str, now: datetime,
                    rows: Sequence[tuple[str, str, str, str | None]]) -> None:
    """Insert (contact id, customer id, name, role) contacts."""
    stamp = to_db(now)
    conn.executemany(
        "INSERT INTO contacts (tenant_id, id, customer_id, name, role, created_at) VALUES (?,?,?,?,?,?)",
        [(tenant, contact_id, customer_id, name.strip(), role, stamp) for contact_id, customer_id, name, role in rows],
    )


def add_contact(conn: sqlite3.Connection, tenant: str, customer_id: str, name: str, role: str | None,
                now: datetime) -> str:
    contact_id = new_id("con")
    insert_contacts(conn, tenant, now, [(contact_id, customer_id, name, role)])
    return contact_id


def give(conn: sqlite3.Connection, tenant: str, customer_id: str, contact_id: str | None,
         phones: Iterable[str], emails: Iterable[str]) -> None:
    """Add these numbers and e-mails to the account as the contact's; one the account holds already stays whose
    it is (or becomes this contact's, when it was nobody's)."""
    for table, column, values in (("customer_phones", "e164", phones), ("customer_emails", "email", emails)):
        conn.executemany(
            f"INSERT INTO {table} (tenant_id, customer_id, {column}, contact_id) VALUES (?,?,?,?) "
            f"ON CONFLICT (tenant_id, customer_id, {column}) DO UPDATE SET contact_id = COALESCE({table}.contact_id, "
            "excluded.contact_id)",
            [(tenant, customer_id, value, contact_id) for value in values],
        )


def load_contacts(conn: sqlite3.Connection, tenant: str, customer_id: str) -> list[Contact]:
    """The account's contacts, oldest first, each with its numbers and e-mails (point reads on the keys)."""
    held = {
        part: [(r[0], r[1]) for r in conn.execute(
            f"SELECT {column}, contact_id FROM {table} WHERE tenant_id=? AND customer_id=? AND contact_id IS NOT NULL",
            (tenant, customer_id))]
        for table, column, part in (("customer_phones", "e164", "phones"), ("customer_emails", "email", "emails"))
    }
    return contacts_holding(conn, tenant, customer_id, held["phones"], held["emails"])


def contacts_holding(conn: sqlite3.Connection, tenant: str, customer_id: str,
                     phones: Iterable[tuple[str, str | None]], emails: Iterable[tuple[str, str | None]]) -> list[Contact]:
    """The account's contacts, oldest first, given its (number, contact id) and (e-mail, contact id) pairs as the
    caller read them already (a lookup's answer reads the customer's numbers once, not once more per contact)."""
    found = {
        r["id"]: Contact(contact_id=r["id"], name=r["name"], role=r["role"])
        for r in conn.execute("SELECT id, name, role FROM contacts WHERE tenant_id=? AND customer_id=? "
                              "ORDER BY created_at, id", (tenant, customer_id))
    }
    for part, pairs in (("phones", phones), ("emails", emails)):
        for value, owner_id in sorted((v, o) for v, o in pairs if o is not None):
            if (owner := found.get(owner_id)) is not None:
                getattr(owner, part).append(value)
    return list(found.values())


def contact_names(conn: sqlite3.Connection, tenant: str, customer_ids: Sequence[str]) -> dict[str, list[str]]:
    """The names of these accounts' contacts, one statement per 500 accounts."""
    names: dict[str, list[str]] = {}
    for start in range(0, len(customer_ids), 500):
        chunk = list(customer_ids[start : start + 500])
        for r in conn.execute(f"SELECT customer_id, name FROM contacts WHERE tenant_id=? AND customer_id IN "  # from
                              f"({placeholders(len(chunk))}) ORDER BY customer_id, name", (tenant, *chunk)):  # the index
            names.setdefault(r[0], []).append(r[1])
    return names


def fold(conn: sqlite3.Connection, tenant: str, keep_id: str, merged_ids: Sequence[str]) -> list[Contact]:
    """Make the merged records' people contacts of the kept account (their phones and e-mails already moved
    there with their contact ids): one whose name agrees with a contact the account has is that contact.
    Returns the account's contacts."""
    if merged_ids:
        conn.execute(f"UPDATE contacts SET customer_id=? WHERE tenant_id=? AND customer_id IN "
                     f"({placeholders(len(merged_ids))})", (keep_id, tenant, *merged_ids))
    kept: list[Contact] = []
    for contact in load_contacts(conn, tenant, keep_id):
        same = next((k for k in kept if same_person(parse_name(k.name), parse_name(contact.name))), None)
        if same is None:
            kept.append(contact)
            continue
        for table in ("customer_phones", "customer_emails"):
            conn.execute(f"UPDATE {table} SET contact_id=? WHERE tenant_id=? AND customer_id=? AND contact_id=?",
                         (same.contact_id, tenant, keep_id, contact.contact_id))
        conn.execute("DELETE FROM contacts WHERE tenant_id=? AND id=?", (tenant, contact.contact_id))
        same.phones = sorted({*same.phones, *contact.phones})
        same.emails = sorted({*same.emails, *contact.emails})
        if contact.role and not same.role:
            conn.execute("UPDATE contacts SET role=? WHERE tenant_id=? AND id=?", (contact.role, tenant, same.contact_id))
            same.role = contact.role
    return kept
