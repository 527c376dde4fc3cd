"""Customers, their locations, and the identity index (match_keys) kept beside them."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from fsm_mcp.errors import NotFound
from fsm_mcp.identity.addresses import address_entry
from fsm_mcp.identity.keys import MAX_WIDE_BLOCK, WIDE, Profile, query_keys, record_keys
from fsm_mcp.identity.model import Model
from fsm_mcp.identity.names import parse_name
from fsm_mcp.identity.phones import ParsedPhone
from fsm_mcp.identity.scoring import Scored, score, settle
from fsm_mcp.inputs import AddressIn
from fsm_mcp.models import Address, Customer, Equipment, Location, Phone
from fsm_mcp.store import contacts
from fsm_mcp.store.db import new_id, placeholders, to_db

MAX_PER_KEY = 500  # a key shared by more customers than this says too little to be worth scoring


@dataclass(frozen=True, slots=True)
class NewCustomer:
    name: str
    phones: Sequence[ParsedPhone] = ()
    emails: Sequence[str] = ()
    notes: str | None = None
    external_id: str | None = None
    tags: Sequence[str] = ()
    import_key: str | None = None  # set by an import: what a rerun recognises the row by


def insert_customers(conn: sqlite3.Connection, tenant: str, now: datetime, new: Sequence[NewCustomer]) -> list[str]:
    """Insert customers in a few statements (an import sends thousands at a time); returns their ids."""
    ids = [new_id("cus") for _ in new]
    people = [new_id("con") for _ in new]  # each customer's first contact, named as the customer
    stamp = to_db(now)
    conn.executemany(
        "INSERT INTO customers (tenant_id, id, external_id, name, notes, tags, created_at, updated_at, import_key) "
        "VALUES (?,?,?,?,?,?,?,?,?)",
        [(tenant, cid, c.external_id, c.name.strip(), c.notes, json.dumps(list(c.tags)), stamp, stamp, c.import_key)
         for cid, c in zip(ids, new, strict=True)],
    )
    contacts.insert_contacts(conn, tenant, now, [(person, cid, c.name, contacts.PRIMARY)
                                                 for cid, person, c in zip(ids, people, new, strict=True)])
    conn.executemany(
        "INSERT INTO customer_phones (tenant_id, customer_id, e164, extension, contact_id) VALUES (?,?,?,?,?) "
        "ON CONFLICT DO NOTHING",
        [(tenant, cid, p.e164, p.extension, person) for cid, person, c in zip(ids, people, new, strict=True)
         for p in c.phones],
    )
    conn.executemany(
        "INSERT INTO customer_emails (tenant_id, customer_id, email, contact_id) VALUES (?,?,?,?) ON CONFLICT DO NOTHING",
        [(tenant, cid, e, person) for cid, person, c in zip(ids, people, new, strict=True) for e in c.emails],
    )
    return ids


def insert_customer(
    conn: sqlite3.Connection,
    tenant: str,
    now: datetime,
    *,
    name: str,
    phones: Sequence[ParsedPhone] = (),
    emails: Sequence[str] = (),
    notes: str | None = None,
    external_id: str | None = None,
    tags: Sequence[str] = (),
) -> str:
    return insert_customers(conn, tenant, now, [NewCustomer(name, phones, emails, notes, external_id, tags)])[0]


def insert_locations(
    conn: sqlite3.Connection, tenant: str, now: datetime,
    new: Sequence[tuple[str, AddressIn, str | None, Sequence[Equipment]]],
) -> list[str]:
    """Insert (customer_id, address, access notes, equipment) service locations; returns their ids."""
    ids = [new_id("loc") for _ in new]
    conn.executemany(
        "INSERT INTO locations (tenant_id, id, customer_id, street, unit, city, state, postal_code, country, "
        "access_notes, equipment, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            (tenant, location_id, customer_id, a.street, a.unit, a.city, a.state, a.postal_code, a.country, access_notes,
             json.dumps([e.model_dump(exclude_none=True) for e in equipment]), to_db(now))
            for location_id, (customer_id, a, access_notes, equipment) in zip(ids, new, strict=True)
        ],
    )
    return ids


def insert_location(
    conn: sqlite3.Connection,
    tenant: str,
    customer_id: str,
    address: AddressIn,
    now: datetime,
    access_notes: str | None = None,
    equipment: Sequence[Equipment] = (),
) -> str:
    return insert_locations(conn, tenant, now, [(customer_id, address, access_notes, equipment)])[0]


def reindex(conn: sqlite3.Connection, tenant: str, customer_ids: Iterable[str]) -> None:
    """Recompute the match keys of these customers from what is stored."""
    ids = list(customer_ids)
    conn.executemany("DELETE FROM match_keys WHERE tenant_id=? AND customer_id=?", [(tenant, c) for c in ids])
    profiles = load_profiles(conn, tenant, ids)
    conn.executemany(
        "INSERT INTO match_keys (tenant_id, key, customer_id) VALUES (?,?,?) ON CONFLICT DO NOTHING",
        [(tenant, key, cid) for cid, profile in profiles.items() for key in record_keys(profile)],
    )


def rebuild_index(conn: sqlite3.Connection, tenant: str, progress: Callable[[int, int], None] | None = None) -> int:
    """Recompute every live customer's match keys, in the caller's transaction (lookups meanwhile
    see the old index). Needed only when an upgrade changes the key rules: creates, changes and
    merges keep the index current as they happen.

    Keys are gathered in a scratch table and written to the index sorted, so the index grows
    by appending instead of inserting at random pages."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS new_keys (key TEXT NOT NULL, customer_id TEXT NOT NULL)")
    conn.execute("DELETE FROM new_keys")
    total = conn.execute("SELECT count(*) FROM customers WHERE tenant_id=? AND merged_into IS NULL", (tenant,)).fetchone()[0]
    done, batch = 0, list[tuple[str, str]]()
    for cid, profile in _all_profiles(conn, tenant):
        batch.extend((key, cid) for key in record_keys(profile))
        done += 1
        if done % 20000 == 0 or done == total:
            conn.executemany("INSERT INTO new_keys (key, customer_id) VALUES (?,?)", batch)
            batch = []
            if progress:
                progress(done, total)
    conn.executemany("INSERT INTO new_keys (key, customer_id) VALUES (?,?)", batch)
    conn.execute("DELETE FROM match_keys WHERE tenant_id=?", (tenant,))
    conn.execute(
        "INSERT INTO match_keys (tenant_id, key, customer_id) "  # WHERE true: SQLite's parser needs it before ON CONFLICT
        "SELECT ?, key, customer_id FROM new_keys WHERE true ORDER BY key, customer_id ON CONFLICT DO NOTHING", (tenant,),
    )
    conn.execute("DELETE FROM new_keys")
    return done


def _all_profiles(conn: sqlite3.Connection, tenant: str) -> Iterator[tuple[str, Profile]]:
    """Every live customer's identity profile, by walking the four tables once each in customer order."""

    def grouped(sql: str) -> Iterator[tuple[str, list[tuple[str, ...]]]]:
        cursor = conn.cursor()
        cursor.row_factory = None
        for cid, rows in itertools.groupby(cursor.execute(sql, (tenant,)), key=lambda r: r[0]):
            yield cid, [r[1:] for r in rows]

    streams = {
        "phones": grouped("SELECT customer_id, e164 FROM customer_phones WHERE tenant_id=? ORDER BY customer_id"),
        "emails": grouped("SELECT customer_id, email FROM customer_emails WHERE tenant_id=? ORDER BY customer_id"),
        "places": grouped("SELECT customer_id, street, unit, postal_code, city, state FROM locations "
                          "WHERE tenant_id=? ORDER BY customer_id"),
    }
    heads: dict[str, tuple[str, list[tuple[str, ...]]] | None] = {k: next(v, None) for k, v in streams.items()}

    def take(kind: str, cid: str) -> list[tuple[str, ...]]:
        while (head := heads[kind]) is not None and head[0] < cid:  # rows of merged records: skip
            heads[kind] = next(streams[kind], None)
        if head is not None and head[0] == cid:
            heads[kind] = next(streams[kind], None)
            return head[1]
        return []

    cursor = conn.cursor()
    cursor.row_factory = None
    for cid, name in cursor.execute(
        "SELECT id, name FROM customers WHERE tenant_id=? AND merged_into IS NULL ORDER BY id", (tenant,)
    ):
        profile = Profile(name=parse_name(name), name_raw=name)
        profile.phones.update(r[0] for r in take("phones", cid))
        profile.emails.update(r[0] for r in take("emails", cid))
        profile.addresses.extend(address_entry(*place) for place in take("places", cid))
        yield cid, profile


_PARTS = {  # the Profile fields beyond the name, each gathered by one subquery
    "phones": "(SELECT json_group_array(p.e164) FROM customer_phones p WHERE p.tenant_id=c.tenant_id AND p.customer_id=c.id)",
    "emails": "(SELECT json_group_array(e.email) FROM customer_emails e WHERE e.tenant_id=c.tenant_id AND e.customer_id=c.id)",
    "addresses": "(SELECT json_group_array(json_array(l.street, l.unit, l.postal_code, l.city, l.state)) FROM locations l "
                 "WHERE l.tenant_id=c.tenant_id AND l.customer_id=c.id)",
}


def load_profiles(
    conn: sqlite3.Connection, tenant: str, ids: Sequence[str], compared_with: Profile | None = None
) -> dict[str, Profile]:
    """Identity profiles of live (not merged) customers among `ids`, one statement per 500.

    Given the query they are to be compared with, only the parts it has are read: a caller
    ID alone needs the candidates' numbers, not their addresses parsed (a lookup waits on it).
    """
    q = compared_with
    parts = [part for part in _PARTS if q is None or getattr(q, part)]
    with_name = q is None or q.name is not None
    columns = "".join(f", {_PARTS[part]}" for part in parts)
    profiles: dict[str, Profile] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        sql = (f"SELECT c.id, c.name{columns} FROM customers c "
               f"WHERE c.tenant_id=? AND c.id IN ({placeholders(len(chunk))}) AND c.merged_into IS NULL")
        for cid, name, *found in conn.execute(sql, (tenant, *chunk)):
            profile = Profile(name=parse_name(name) if with_name else None, name_raw=name)
            for part, value in zip(parts, found, strict=True):
                if part == "addresses":
                    profile.addresses.extend(address_entry(*place) for place in json.loads(value))
                else:
                    getattr(profile, part).update(json.loads(value))
            profiles[cid] = profile
    return profiles


def _candidates(conn: sqlite3.Connection, tenant: str, keys: Iterable[str], owners: dict[str, int]) -> set[str]:
    """Customers sharing any of these keys; a key shared by too many says too little (but a number or e-mail
    always counts). Records in `owners` how many live customers hold each queried number."""
    ids: set[str] = set()
    for key in keys:
        most = MAX_WIDE_BLOCK if key.startswith(WIDE) else MAX_PER_KEY
        rows = conn.execute(
            "SELECT customer_id FROM match_keys WHERE tenant_id=? AND key=? LIMIT ?", (tenant, key, most + 1)
        ).fetchall()
        if key.startswith("p:"):
            owners[key[2:]] = len(rows)
        if len(rows) <= most or key[0] in "pe":
            ids.update(r[0] for r in rows)
    return ids


def lookup(conn: sqlite3.Connection, tenant: str, query: Profile, limit: int) -> list[Scored]:
    """Candidates from the narrow keys first; the wide ones only when those found no one to attach."""
    from fsm_mcp.directory import identity_model  # it reads profiles through this module

    keys = query_keys(query)
    model = identity_model.load(conn, tenant)
    owners: dict[str, int] = {}
    scored: list[Scored] = []
    seen: set[str] = set()
    for tier in (sorted(k for k in keys if not k.startswith(WIDE)), sorted(k for k in keys if k.startswith(WIDE))):
        if not tier or any(m.confidence in ("exact", "likely") for m in scored):
            continue
        ids = _candidates(conn, tenant, tier, owners) - seen
        seen |= ids
        profiles = load_profiles(conn, tenant, sorted(ids), query)
        people = contacts.contact_names(conn, tenant, sorted(profiles)) if query.name is not None else {}
        scored += [found for cid, profile in profiles.items()
                   if (found := _best_person(query, profile, cid, owners, model, people.get(cid, ()))) is not None]
    return settle(scored)[:limit]


_RANKED = {"exact": 2, "likely": 1, "possible": 0}


def _best_person(query: Profile, profile: Profile, cid: str, owners: dict[str, int], model: Model,
                 people: Sequence[str]) -> Scored | None:
    """The account as a match for the caller, as whichever of its people fits best: its billing name or one of
    its contacts' (Libby Mamarika, once a contact of the Mamarika account, is its person, not a stranger)."""
    best = score(query, profile, cid, owners, model)
    for name in people:
        if name.strip().lower() == profile.name_raw.strip().lower():
            continue
        found = score(query, Profile(parse_name(name), name, profile.phones, profile.emails, profile.addresses),
                      cid, owners, model)
        if found is not None and (best is None or (found.level == "contact", _RANKED[found.confidence], found.score)
                                  > (best.level == "contact", _RANKED[best.confidence], best.score)):
            found.name = profile.name_raw  # the account's (billing) name; the caller's contact is said apart
            best = found
    return best


def load_customer(conn: sqlite3.Connection, tenant: str, customer_id: str, field: str = "customer_id") -> Customer:
    row = conn.execute(
        "SELECT c.*, (SELECT json_group_array(json_array(p.e164, p.extension)) FROM customer_phones p "
        "WHERE p.tenant_id=c.tenant_id AND p.customer_id=c.id) AS phone_list, (SELECT json_group_array(e.email) "
        "FROM customer_emails e WHERE e.tenant_id=c.tenant_id AND e.customer_id=c.id) AS email_list "
        "FROM customers c WHERE c.tenant_id=? AND c.id=?",
        (tenant, customer_id),
    ).fetchone()
    if row is None:
        raise NotFound("customer", customer_id, field, "Find the customer with lookup_customer first.")
    return Customer(
        customer_id=row["id"], external_id=row["external_id"], name=row["name"],
        phones=[Phone(number=number, extension=ext) for number, ext in json.loads(row["phone_list"])],
        emails=json.loads(row["email_list"]), notes=row["notes"], tags=json.loads(row["tags"]),
        locations=load_locations(conn, tenant, customer_id), merged_into=row["merged_into"],
        contacts=contacts.load_contacts(conn, tenant, customer_id),
    )


def load_locations(conn: sqlite3.Connection, tenant: str, customer_id: str) -> list[Location]:
    return [
        Location(
            location_id=r["id"],
            address=Address(street=r["street"], unit=r["unit"], city=r["city"], state=r["state"],
                            postal_code=r["postal_code"], country=r["country"]),
            access_notes=r["access_notes"],
            equipment=[Equipment(**e) for e in json.loads(r["equipment"])],
        )
        for r in conn.execute(
            "SELECT * FROM locations WHERE tenant_id=? AND customer_id=? ORDER BY created_at, id", (tenant, customer_id)
        )
    ]

