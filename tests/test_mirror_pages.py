"""A vendor's page of customers, places and contacts lands in the directory as the row-by-row writes did, written a
table at a time: new records, a number changed at the vendor, a contact met twice in one page, a place's
contact filed under its customer, and a place not synced yet."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fsm_mcp.directory import mirror
from fsm_mcp.directory.mirror import MirroredContact, MirroredCustomer, MirroredLocation
from fsm_mcp.models import Address
from fsm_mcp.store import open_store
from tests import stores

NOW = datetime(2030, 1, 1, tzinfo=UTC)  # a stored stamp, never compared with today
HOME = Address(street="12 Oak St", city="Springfield", state="IL", postal_code="62701", country="US")


def numbers(conn: Any) -> list[tuple[str, str, str]]:
    return [tuple(r) for r in conn.execute(
        "SELECT customer_id, e164, contact_id FROM customer_phones WHERE tenant_id='t' ORDER BY customer_id, e164")]


def test_a_page_is_written_as_the_row_by_row_writes_wrote_it(tmp_path: Path, store_kind: str) -> None:
    db = open_store(stores.target(store_kind, tmp_path))
    try:
        touched = db.write(lambda conn: mirror.upsert(
            conn, "t", NOW, index=False,
            customers=[MirroredCustomer("1", "Ann Lee", NOW), MirroredCustomer("2", "Bo Diaz", None)],
            locations=[MirroredLocation("L1", "1", HOME, NOW)]))
        assert touched == {"1", "2"}
        touched = db.write(lambda conn: mirror.upsert(conn, "t", NOW, index=False, contacts=[
            MirroredContact("k1", "phone", "+12175550101", customer_id="1"),
            MirroredContact("k2", "phone", "+12175550102", location_id="L1"),  # the place's: filed under customer 1
            MirroredContact("k3", "phone", "+12175550103", location_id="L9"),  # a place not synced yet: left for later
            MirroredContact("k4", "email", "bo@example.com", customer_id="2"),
        ]))
        assert touched == {"1", "2"}
        assert db.read(numbers) == [("1", "+12175550101", "con_1"), ("1", "+12175550102", "con_1")]
        # a number changed at the vendor replaces the old one; a contact met twice in a page ends as its last
        db.write(lambda conn: mirror.upsert(conn, "t", NOW, index=False, contacts=[
            MirroredContact("k1", "phone", "+12175550199", customer_id="1"),
            MirroredContact("k5", "phone", "+12175550105", customer_id="2"),
            MirroredContact("k5", "phone", "+12175550106", customer_id="2"),
        ]))
        assert db.read(numbers) == [("1", "+12175550102", "con_1"), ("1", "+12175550199", "con_1"),
                                    ("2", "+12175550106", "con_2")]
        emails = db.read(lambda conn: [tuple(r) for r in conn.execute(
            "SELECT customer_id, email FROM customer_emails WHERE tenant_id='t'")])
        assert emails == [("2", "bo@example.com")]
    finally:
        db.close()
