"""Recognition at the account level in a small business: a household's other member is the account,
a stranger on the same street is nobody, through the real tools."""

from pathlib import Path

import pytest
from mcp import Client

from fsm_mcp.importer import import_customers
from fsm_mcp.settings import Settings
from fsm_mcp.store import open_store
from tests.conftest import BUSINESS, MONDAY_9, call

pytestmark = pytest.mark.anyio

GIVEN = ["Ada", "Bea", "Cora", "Dora", "Edna", "Flora", "Gwen", "Hazel"]
FAMILY = ["Brandt", "Moss", "Keane", "Lowe", "Pryor"]


@pytest.fixture
def one_street(settings: Settings, tmp_path: Path) -> dict[str, str]:
    """40 customers on Bimberi Crescent, each with a house, phone and e-mail of their own; Hugo Mamarika at 28."""
    rows = ["external_id,name,phone,email,street,city,state,postal_code"]
    for i in range(39):
        house = 2 * i + 30
        rows.append(f"c{i},{GIVEN[i % 8]} {FAMILY[i % 5]},(217) 555-{1000 + i},p{i}@example.com,"
                    f"{house} Bimberi Crescent,Springfield,IL,62704")
    rows.append("hugo,Hugo Mamarika,(217) 555-2000,hugo@example.com,28 Bimberi Crescent,Springfield,IL,62704")
    csv = tmp_path / "street.csv"
    csv.write_text("\n".join(rows) + "\n")
    db = open_store(settings.db_path)
    import_customers(db, BUSINESS, csv)
    ids = dict(db.read(lambda conn: conn.execute("SELECT external_id, id FROM customers").fetchall()))
    db.close()
    return ids


async def test_a_new_caller_with_a_house_of_her_own_on_a_shared_street_is_nobody_and_is_booked(
    client: Client, one_street: dict
) -> None:
    caller = {"name": "Rosalind Achterberg", "phone": "(217) 555-3000", "address": "29 Bimberi Crescent, Springfield, IL 62704"}
    found = await call(client, "lookup_customer", **caller)
    assert found["matches"] == []  # neither name agrees, only the street: no strangers to ask about
    job = await call(client, "create_job", customer=caller, job_type="hvac", summary="No heat", idempotency_key="r",
                     **MONDAY_9)
    assert job["customer_created"] is True


async def test_a_caller_with_no_usable_name_on_a_customers_street_is_not_booked_onto_that_record(
    client: Client, one_street: dict
) -> None:
    caller = {"name": "Resident", "address": "31 Bimberi Crescent, Springfield, IL 62704"}
    job = await call(client, "create_job", customer=caller, job_type="hvac", summary="No heat", idempotency_key="n",
                     **MONDAY_9)
    assert job["customer_created"] is True
    assert job["customer_id"] not in one_street.values()


async def test_another_member_of_a_household_calling_for_its_house_recognises_the_account(
    client: Client, one_street: dict
) -> None:
    found = await call(client, "lookup_customer", name="Libby Mamarika", address="28 Bimberi Crescent, Springfield, IL 62704")
    top = found["matches"][0]
    assert (top["customer_id"], top["confidence"], top["level"]) == (one_street["hugo"], "likely", "account")
    assert any("household" in reason for reason in top["reasons"])
    himself = await call(client, "lookup_customer", name="Hugo Mamarika", phone="217 555 2000")
    assert himself["matches"][0]["level"] == "contact"


async def test_a_new_caller_sharing_only_a_surname_with_a_customer_elsewhere_is_nobody_and_is_booked(
    client: Client, one_street: dict
) -> None:
    # Hugo Mamarika has his own phone at 28; Zelda Mamarika calls from another number at another street.
    caller = {"name": "Zelda Mamarika", "phone": "(217) 555-3111", "address": "5 Canyon Drive, Springfield, IL 62704"}
    found = await call(client, "lookup_customer", **caller)
    assert found["matches"] == []  # a surname, against another given name, phone and street, is not worth asking about
    job = await call(client, "create_job", customer=caller, job_type="hvac", summary="No heat", idempotency_key="z",
                     **MONDAY_9)
    assert job["customer_created"] is True and job["customer_id"] != one_street["hugo"]


async def test_duplicates_compare_an_accounts_contacts_a_record_of_its_known_contact_is_that_person(
    client: Client, settings: Settings, one_street: dict, tmp_path: Path
) -> None:
    libby = {"name": "Libby Mamarika", "phone": "(217) 555-4000", "address": "28 Bimberi Crescent, Springfield, IL 62704"}
    job = await call(client, "create_job", customer=libby, job_type="hvac", summary="No heat", idempotency_key="l",
                     **MONDAY_9)
    assert job["customer_id"] == one_street["hugo"] and job["contact_added"]  # she is the Mamarika account's contact
    csv = tmp_path / "later.csv"  # a later list carries her as a record of her own, under a slip of her name
    csv.write_text("external_id,name,street,city,state,postal_code\n"
                   "libby,Libbey Mamarika,28 Bimberi Crescent,Springfield,IL,62704\n")
    db = open_store(settings.db_path)
    import_customers(db, BUSINESS, csv)
    db.close()
    report = await call(client, "find_duplicate_customers")
    group = next(g for g in report["groups"] if "libby" in {m["external_id"] for m in g["members"]})
    assert [(m["external_id"], m["person"]) for m in group["members"]] == [("hugo", 1), ("libby", 1)]
    assert group["confidence"] in ("exact", "likely")
    assert any("given name differs by a slip (Libby / Libbey)" in r for r in group["reasons"])
