"""The customer directory's SQL: customers, their places, numbers and e-mails, the identity index
(match_keys) kept beside them, and the business's identity model.

The rules (what a profile is, which keys it has, how candidates score) live in `directory/` and `identity/`;
this module only reads and writes rows. Bulk writes (an import's batches, a rebuild of the index) go through
`insert_rows`, which on PostgreSQL streams them with COPY instead of sending INSERT statements.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fsm_mcp.errors import NotFound
from fsm_mcp.identity.phones import ParsedPhone
from fsm_mcp.inputs import AddressIn
from fsm_mcp.models import Address, Customer, Equipment, Location, Phone
from fsm_mcp.store import contacts
from fsm_mcp.store.db import new_ids, placeholders, to_db

COPY_FROM = 64  # rows from which a bulk insert on PostgreSQL goes as COPY (a booking's one row stays an INSERT)
CHUNK = 500  # ids per IN list


def insert_rows(conn: Any, table: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Insert rows that are new (no key among them is in the table yet, nor twice among them). On PostgreSQL
    a batch of COPY_FROM or more is streamed by COPY: one statement, no parsing or planning per row."""
    batch = rows if isinstance(rows, list) else list(rows)
    if not batch:
        return
    copy = getattr(conn, "copy_rows", None)
    if copy is not None and len(batch) >= COPY_FROM:
        copy(table, columns, batch)
        return
    conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders(len(columns))})", batch)


# --- customers and their places ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewCustomer:
    name: str
    phones: Sequence[ParsedPhone] = ()
    emails: Sequence[str] = ()
    notes: str | None = None
    external_id: str | None = None
    tags: Sequence[str] = ()
    import_key: str | None = None  # set by an import: what a rerun recognises the row by


def insert_customers(conn: Any, tenant: str, now: datetime, new: Sequence[NewCustomer]) -> list[str]:
    """Insert customers in a few statements (an import sends thousands at a time), each with its first contact,
    named as it, owning its phones and e-mails; returns their ids."""
    ids, people = new_ids("cus", len(new)), new_ids("con", len(new))
    stamp = to_db(now)
    insert_rows(conn, "customers",
                ("tenant_id", "id", "external_id", "name", "notes", "tags", "created_at", "updated_at", "import_key"),
                [(tenant, cid, c.external_id, c.name.strip(), c.notes, json.dumps(list(c.tags)) if c.tags else "[]", stamp, stamp,
                  c.import_key) for cid, c in zip(ids, new, strict=True)])
    insert_rows(conn, "contacts", ("tenant_id", "id", "customer_id", "name", "role", "created_at"),
                [(tenant, person, cid, c.name.strip(), contacts.PRIMARY, stamp)
                 for cid, person, c in zip(ids, people, new, strict=True)])
    phones: dict[tuple[str, str], tuple[object, ...]] = {}  # a number given twice is held once, as it was first given
    emails: dict[tuple[str, str], tuple[object, ...]] = {}
    for cid, person, c in zip(ids, people, new, strict=True):
        for p in c.phones:
            phones.setdefault((cid, p.e164), (tenant, cid, p.e164, p.extension, person))
        for e in c.emails:
            emails.setdefault((cid, e), (tenant, cid, e, person))
    insert_rows(conn, "customer_phones", ("tenant_id", "customer_id", "e164", "extension", "contact_id"),
                list(phones.values()))
    insert_rows(conn, "customer_emails", ("tenant_id", "customer_id", "email", "contact_id"), list(emails.values()))
    return ids


def insert_customer(
    conn: Any, tenant: str, now: datetime, *, name: str, phones: Sequence[ParsedPhone] = (),
    emails: Sequence[str] = (), notes: str | None = None, external_id: str | None = None, tags: Sequence[str] = (),
) -> str:
    return insert_customers(conn, tenant, now, [NewCustomer(name, phones, emails, notes, external_id, tags)])[0]


def insert_locations(
    conn: Any, tenant: str, now: datetime, new: Sequence[tuple[str, AddressIn, str | None, Sequence[Equipment]]],
) -> list[str]:
    """Insert (customer_id, address, access notes, equipment) service locations; returns their ids."""
    ids = new_ids("loc", len(new))
    stamp = to_db(now)
    insert_rows(
        conn, "locations",
        ("tenant_id", "id", "customer_id", "street", "unit", "city", "state", "postal_code", "country", "access_notes",
         "equipment", "created_at"),
        [(tenant, location_id, customer_id, a.street, a.unit, a.city, a.state, a.postal_code, a.country, access_notes,
          json.dumps([e.model_dump(exclude_none=True) for e in equipment]), stamp)
         for location_id, (customer_id, a, access_notes, equipment) in zip(ids, new, strict=True)],
    )
    return ids


def insert_location(conn: Any, tenant: str, customer_id: str, address: AddressIn, now: datetime,
                    access_notes: str | None = None, equipment: Sequence[Equipment] = ()) -> str:
    return insert_locations(conn, tenant, now, [(customer_id, address, access_notes, equipment)])[0]


def load_customer(conn: Any, tenant: str, customer_id: str, field: str = "customer_id") -> Customer:
    row = conn.execute(
        "SELECT c.*, (SELECT json_group_array(json_array(p.e164, p.extension, p.contact_id)) FROM customer_phones p "
        "WHERE p.tenant_id=c.tenant_id AND p.customer_id=c.id) AS phone_list, "
        "(SELECT json_group_array(json_array(e.email, e.contact_id)) "
        "FROM customer_emails e WHERE e.tenant_id=c.tenant_id AND e.customer_id=c.id) AS email_list "
        "FROM customers c WHERE c.tenant_id=? AND c.id=?",
        (tenant, customer_id),
    ).fetchone()
    if row is None:
        raise NotFound("customer", customer_id, field, "Find the customer with lookup_customer first.")
    phones, emails = json.loads(row["phone_list"]), json.loads(row["email_list"])
    return Customer(
        customer_id=row["id"], external_id=row["external_id"], name=row["name"],
        phones=[Phone(number=number, extension=ext) for number, ext, _ in phones],
        emails=[email for email, _ in emails], notes=row["notes"], tags=json.loads(row["tags"]),
        locations=load_locations(conn, tenant, customer_id), merged_into=row["merged_into"],
        contacts=contacts.contacts_holding(conn, tenant, customer_id, [(p[0], p[2]) for p in phones],
                                           [(e[0], e[1]) for e in emails]),
    )


def load_locations(conn: Any, tenant: str, customer_id: str) -> list[Location]:
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


def count_customers(conn: Any, tenant: str, live: bool = True) -> int:
    """The business's customers; `live`: only those not merged into another."""
    where = " AND merged_into IS NULL" if live else ""
    return int(conn.execute(f"SELECT count(*) FROM customers WHERE tenant_id=?{where}", (tenant,)).fetchone()[0])


def sample_live_ids(conn: Any, tenant: str, share: float, limit: int) -> list[str]:
    """Up to `limit` live customers' ids, each taken with probability `share` (no sort of the whole base)."""
    return [r[0] for r in conn.execute(
        "SELECT id FROM customers WHERE tenant_id=? AND merged_into IS NULL AND abs(random()) % 1000000 < ? LIMIT ?",
        (tenant, int(share * 1_000_000), limit))]


def summaries(conn: Any, tenant: str, ids: Sequence[str]) -> dict[str, Any]:
    """id -> row (id, name, external_id, created_at) of these customers, one statement per CHUNK."""
    return {
        row["id"]: row
        for start in range(0, len(ids), CHUNK)
        for row in conn.execute(
            f"SELECT id, name, external_id, created_at FROM customers WHERE tenant_id=? AND id IN "
            f"({placeholders(len(ids[start:start + CHUNK]))})", (tenant, *ids[start : start + CHUNK]))
    }


def names_and_addresses(conn: Any, tenant: str, customer_ids: Iterable[str],
                        location_ids: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Customers' names and locations' one-line addresses, for showing a vendor's jobs: one read each."""
    cids, lids = sorted(set(customer_ids)), sorted(set(location_ids))
    names = dict(conn.execute(f"SELECT id, name FROM customers WHERE tenant_id=? AND id IN ({placeholders(len(cids))})",
                              (tenant, *cids)).fetchall())
    addresses = {
        r["id"]: Address(street=r["street"], unit=r["unit"], city=r["city"], state=r["state"],
                         postal_code=r["postal_code"]).one_line()
        for r in conn.execute(f"SELECT * FROM locations WHERE tenant_id=? AND id IN ({placeholders(len(lids))})", (tenant, *lids))
    }
    return names, addresses


# --- what identity reads of a customer ---------------------------------------------------------------------

PARTS = ("phones", "emails", "addresses")
_PARTS = {  # the parts of a profile beyond the name, each gathered by one subquery (people: see profile_rows)
    "phones": "(SELECT json_group_array(p.e164) FROM customer_phones p WHERE p.tenant_id=c.tenant_id AND p.customer_id=c.id)",
    "emails": "(SELECT json_group_array(e.email) FROM customer_emails e WHERE e.tenant_id=c.tenant_id AND e.customer_id=c.id)",
    "addresses": "(SELECT json_group_array(json_array(l.street, l.unit, l.postal_code, l.city, l.state)) FROM locations l "
                 "WHERE l.tenant_id=c.tenant_id AND l.customer_id=c.id)",
    "people": "(SELECT json_group_array(k.name) FROM contacts k WHERE k.tenant_id=c.tenant_id AND k.customer_id=c.id "
              "AND k.name <> c.name)",
}

Place = tuple[str, str | None, str | None, str | None, str | None]  # street, unit, postal code, city, state


def profile_rows(conn: Any, tenant: str, ids: Sequence[str], parts: Sequence[str] = PARTS,
                 ) -> Iterator[tuple[str, str, list[Any]]]:
    """(id, name, [each of `parts` as a list]) of the live (not merged) customers among `ids`, one statement per
    CHUNK; only the parts asked for are read (a caller ID alone needs its candidates' numbers, not their places).

    The part "people" is the names of the account's contacts other than its billing name, read in the same
    statement from the contacts index (a statement of its own per lookup, with its own IN list, cost a named
    lookup about a tenth of its time at 100,000 customers)."""
    columns = "".join(f", {_PARTS[part]}" for part in parts)
    for start in range(0, len(ids), CHUNK):
        chunk = list(ids[start : start + CHUNK])
        sql = (f"SELECT c.id, c.name{columns} FROM customers c "
               f"WHERE c.tenant_id=? AND c.id IN ({placeholders(len(chunk))}) AND c.merged_into IS NULL")
        for cid, name, *found in conn.execute(sql, (tenant, *chunk)):
            yield cid, name, [json.loads(value) for value in found]


def every_profile_row(conn: Any, tenant: str) -> Iterator[tuple[str, str, list[str], list[str], list[Place]]]:
    """(id, name, phones, emails, places) of every live customer, in id order: the four tables walked once
    each, side by side, in customer order (no query per customer)."""

    def grouped(sql: str) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
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
    heads: dict[str, tuple[str, list[tuple[Any, ...]]] | None] = {k: next(v, None) for k, v in streams.items()}

    def take(kind: str, cid: str) -> list[tuple[Any, ...]]:
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
        yield (cid, name, [r[0] for r in take("phones", cid)], [r[0] for r in take("emails", cid)],
               take("places", cid))


# --- the identity index ------------------------------------------------------------------------------------


def key_holders(conn: Any, tenant: str, key: str, most: int) -> list[str]:
    """Up to `most` + 1 customers holding this key (one more than `most` says there are too many)."""
    return [r[0] for r in conn.execute("SELECT customer_id FROM match_keys WHERE tenant_id=? AND key=? LIMIT ?",
                                       (tenant, key, most + 1))]


def add_keys(conn: Any, tenant: str, keys: Iterable[tuple[str, str]], new: bool = False) -> None:
    """Add (key, customer id) entries; `new`: the customers are new, so none of these is held yet (a bulk load
    streams them)."""
    rows = sorted((tenant, key, cid) for key, cid in keys)
    if new:
        insert_rows(conn, "match_keys", ("tenant_id", "key", "customer_id"), rows)
    else:
        conn.executemany("INSERT INTO match_keys (tenant_id, key, customer_id) VALUES (?,?,?) ON CONFLICT DO NOTHING",
                         rows)


DROP_KEYS = "DELETE FROM match_keys WHERE tenant_id=? AND customer_id=?"  # by the index match_keys_customer


def drop_keys(conn: Any, tenant: str, customer_ids: Sequence[str]) -> None:
    """Remove these customers' keys, from the index and from an import's pending ones."""
    rows = [(tenant, c) for c in customer_ids]
    conn.executemany(DROP_KEYS, rows)
    conn.executemany("DELETE FROM match_keys_pending WHERE tenant_id=? AND customer_id=?", rows)


# --- an import's keys, held back and merged in key order --------------------------------------------------
#
# Keys arrive from an import in file order, which is random order in the index: on SQLite each batch's
# entries dirtied as many pages of the growing index, and every commit wrote them all again (at 300,000
# customers the index and the commits took two thirds of the import, and their share grew with the base). So
# an import's batches append each new customer's keys, as one JSON list, to match_keys_pending (by customer,
# whose ids grow with time), in the transaction that writes the customer, and the import ends by merging them
# into the index in one sorted pass. A cut-off import leaves its committed batches' keys pending: running it
# again (or a reindex) merges them.


def add_pending_keys(conn: Any, tenant: str, keys: Iterable[tuple[str, Iterable[str]]]) -> None:
    """Hold (customer id, its keys) of new customers until `merge_pending_keys`."""
    insert_rows(conn, "match_keys_pending", ("tenant_id", "customer_id", "keys"),
                [(tenant, cid, json.dumps(sorted(held))) for cid, held in keys])


_PENDING = {  # each pending key with its customer, as rows
    "sqlite": "SELECT p.tenant_id, j.value, p.customer_id FROM match_keys_pending p, json_each(p.keys) j",
    "postgresql": "SELECT p.tenant_id, j.value, p.customer_id FROM match_keys_pending p, "
                  "json_array_elements_text(p.keys::json) AS j(value)",
}


def merge_pending_keys(conn: Any, tenant: str) -> int:
    """Move the business's pending keys into the index, in key order; returns how many customers' were pending.

    When most customers are the pending ones (a first import), the index by customer is built again after the
    move, one sort, instead of taking the keys one by one in key order, which is random order for it (on
    PostgreSQL at 100,000 customers the merge took 11.5 s so, 16.6 s without). On PostgreSQL the primary key
    is built again too: at 300,000 customers, inserting 4.4 M entries through it (ON CONFLICT's check and
    speculative insertion per entry) took 46 s, against 21 s to insert them without it and build it after. The
    entries already in the index are left out instead, which is what ON CONFLICT DO NOTHING did (a customer's
    pending keys are a set, one row per customer), and building the key again checks that it still holds.
    SQLite's readers go on reading the last commit meanwhile; PostgreSQL's lookups wait for the merge's
    commit, in a base that was nearly empty before this import."""
    pending = int(conn.execute("SELECT count(*) FROM match_keys_pending WHERE tenant_id=?", (tenant,)).fetchone()[0])
    if not pending:
        return 0
    dialect = getattr(conn, "dialect", "sqlite")
    rebuild = 2 * pending > int(conn.execute("SELECT count(*) FROM customers").fetchone()[0])
    insert = f"INSERT INTO match_keys (tenant_id, key, customer_id) {_PENDING[dialect]} WHERE p.tenant_id=?"
    if rebuild:
        conn.execute("DROP INDEX match_keys_customer")
    if rebuild and dialect == "postgresql":
        conn.execute("SET LOCAL maintenance_work_mem = '1GB'")  # the sorts of 14 M entries at a million customers
        conn.execute("ALTER TABLE match_keys DROP CONSTRAINT match_keys_pkey")
        conn.execute(f"{insert} AND NOT EXISTS (SELECT 1 FROM match_keys m WHERE m.tenant_id=p.tenant_id "
                     "AND m.key=j.value AND m.customer_id=p.customer_id) ORDER BY j.value, p.customer_id", (tenant,))
        conn.execute("ALTER TABLE match_keys ADD CONSTRAINT match_keys_pkey PRIMARY KEY (tenant_id, key, customer_id)")
    else:
        conn.execute(f"{insert} ORDER BY j.value, p.customer_id ON CONFLICT DO NOTHING", (tenant,))
    if rebuild:
        conn.execute("CREATE INDEX match_keys_customer ON match_keys (tenant_id, customer_id)")
    conn.execute("DELETE FROM match_keys_pending WHERE tenant_id=?", (tenant,))
    return pending


def keys_by_customer(conn: Any, tenant: str) -> Iterator[tuple[str, set[str]]]:
    """Each customer's keys in the index, in customer order: one walk of the index by customer (which holds the
    key too, so the table itself is not read)."""
    cursor = conn.cursor()
    cursor.row_factory = None
    rows = cursor.execute("SELECT customer_id, key FROM match_keys WHERE tenant_id=? ORDER BY customer_id", (tenant,))
    for cid, group in itertools.groupby(rows, key=lambda r: r[0]):
        yield cid, {r[1] for r in group}


REWRITE_BATCH = 20_000  # index entries changed at a time


def replace_all_keys(conn: Any, tenant: str, wanted: Iterable[tuple[str, set[str]]]) -> None:
    """Make the business's index hold exactly these keys, given for every live customer in id order, and none
    of any other customer's, in the caller's transaction.

    The index is walked by customer beside `wanted` and changed by what differs: a rebuild after a change of
    the rules writes the keys it changes, and one that changes nothing writes nothing (deleting and rewriting
    a million customers' fourteen million entries took most of the rebuild, and on SQLite grew the WAL by
    as much). Changes go behind both walks (to customers already passed); new entries go by COPY on
    PostgreSQL."""
    existing = keys_by_customer(conn, tenant)
    head = next(existing, None)
    drop: list[tuple[str, str, str]] = []
    add: list[tuple[str, str, str]] = []

    def flush() -> None:
        if drop:
            conn.executemany("DELETE FROM match_keys WHERE tenant_id=? AND key=? AND customer_id=?", drop)
            drop.clear()
        if add:
            insert_rows(conn, "match_keys", ("tenant_id", "key", "customer_id"), sorted(add))
            add.clear()

    for cid, keys in wanted:
        while head is not None and head[0] < cid:  # a customer no longer live (merged): its keys go
            drop.extend((tenant, key, head[0]) for key in head[1])
            head = next(existing, None)
        old: set[str] = set()
        if head is not None and head[0] == cid:
            old, head = head[1], next(existing, None)
        if keys != old:
            drop.extend((tenant, key, cid) for key in old - keys)
            add.extend((tenant, key, cid) for key in keys - old)
            if len(drop) + len(add) >= REWRITE_BATCH:
                flush()
    while head is not None:
        drop.extend((tenant, key, head[0]) for key in head[1])
        head = next(existing, None)
    flush()


def shared_keys(conn: Any, tenant: str) -> Iterator[tuple[str, list[str]]]:
    """Keys held by two or more customers, with their holders, streamed in key order (the primary key's: no sort)."""
    rows = conn.execute("SELECT key, customer_id FROM match_keys WHERE tenant_id=? ORDER BY key", (tenant,))
    for key, members in itertools.groupby(rows, key=lambda r: r[0]):
        ids = [m[1] for m in members]
        if len(ids) > 1:
            yield key, ids


# --- the identity model ------------------------------------------------------------------------------------


def model_text(conn: Any, tenant: str) -> str | None:
    """The business's trained identity model as stored (JSON), or None before its first training."""
    row = conn.execute("SELECT model FROM identity_model WHERE tenant_id=?", (tenant,)).fetchone()
    return None if row is None else str(row[0])


def save_model(conn: Any, tenant: str, text: str, now: datetime) -> None:
    conn.execute("INSERT INTO identity_model (tenant_id, model, trained_at) VALUES (?,?,?) "
                 "ON CONFLICT (tenant_id) DO UPDATE SET model=excluded.model, trained_at=excluded.trained_at",
                 (tenant, text, to_db(now)))
