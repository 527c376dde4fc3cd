"""A customer is an account (a household, a business) and the people who call for it are its contacts:
the migration of an existing base, recognising a new member of a household, booking adding her, and a merge
folding people into contacts, through the real tools."""

import json

import pytest
from mcp import Client

from fsm_mcp.server import build_server
from fsm_mcp.settings import Settings
from fsm_mcp.store import db as sqlite_store
from fsm_mcp.store import open_store, postgres, schema
from tests import stores
from tests.conftest import MONDAY_9, call, confirmed
from tests.st_rig import WINDOW, Rig
from tests.test_identity_accounts import one_street  # noqa: F401  (40 customers on one street, Hugo Mamarika at 28)

pytestmark = pytest.mark.anyio

HOUSE = "28 Bimberi Crescent, Springfield, IL 62704"
CONTACTS = next(i for i, script in enumerate(schema.MIGRATIONS) if "CREATE TABLE contacts" in script)


def _old_base(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A base as it stood before contacts: two customers with phones and e-mails, and one merged into the first."""
    for module in (sqlite_store, postgres):
        monkeypatch.setattr(module, "MIGRATIONS", schema.MIGRATIONS[:CONTACTS])
    db = open_store(settings.db_path)

    def write(conn) -> None:  # type: ignore[no-untyped-def]
        stamp = "2026-01-05T10:00:00.000000+00:00"
        t = settings.business.tenant_id
        conn.executemany(
            "INSERT INTO customers (tenant_id, id, name, merged_into, created_at, updated_at) VALUES (?,?,?,?,?,?)",
            [(t, "cus_a", "Hugo Mamarika", None, stamp, stamp), (t, "cus_b", "Ada Brandt", None, stamp, stamp),
             (t, "cus_c", "Libby Mamarika", "cus_a", stamp, stamp), (t, "cus_d", "hugo mamarika", "cus_a", stamp, stamp)])
        conn.executemany("INSERT INTO customer_phones (tenant_id, customer_id, e164) VALUES (?,?,?)",
                         [(t, "cus_a", "+12175552000"), (t, "cus_a", "+12175554000"), (t, "cus_b", "+12175551000")])
        conn.executemany("INSERT INTO customer_emails (tenant_id, customer_id, email) VALUES (?,?,?)",
                         [(t, "cus_a", "hugo@example.com"), (t, "cus_b", "ada@example.com")])

    db.write(write)
    db.close()
    monkeypatch.undo()


async def test_the_migration_gives_every_customer_one_contact_owning_its_phones_and_emails(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _old_base(settings, monkeypatch)
    async with Client(build_server(settings)) as client:
        hugo = (await call(client, "get_customer", customer_id="cus_a"))["customer"]
        ada = (await call(client, "get_customer", customer_id="cus_b"))["customer"]
    assert [p["number"] for p in hugo["phones"]] == ["+12175552000", "+12175554000"]
    named = {c["name"]: c for c in hugo["contacts"]}
    assert set(named) == {"Hugo Mamarika", "Libby Mamarika"}  # a record merged earlier under another name is a person
    assert named["Hugo Mamarika"]["role"] == "owner"
    assert named["Hugo Mamarika"]["phones"] == ["+12175552000", "+12175554000"]
    assert named["Hugo Mamarika"]["emails"] == ["hugo@example.com"]
    assert [(c["name"], c["phones"], c["emails"]) for c in ada["contacts"]] == \
        [("Ada Brandt", ["+12175551000"], ["ada@example.com"])]


async def test_a_new_customer_is_created_with_one_contact_named_as_it(client: Client) -> None:
    caller = {"name": "Maria Garcia", "phone": "(312) 555-0188", "address": "410 Maple Dr, Springfield, IL 62704"}
    job = await call(client, "create_job", customer=caller, job_type="hvac", summary="No heat", idempotency_key="m",
                     **MONDAY_9)
    record = (await call(client, "get_customer", customer_id=job["customer_id"]))["customer"]
    assert [(c["name"], c["role"], c["phones"]) for c in record["contacts"]] == [("Maria Garcia", "owner", ["+13125550188"])]
    again = await call(client, "lookup_customer", phone="312 555 0188")
    assert again["caller"]["status"] == "known" and again["caller"]["name"] == "Maria Garcia"


async def test_libby_calling_for_the_mamarika_house_is_the_account_and_booking_makes_her_its_contact(
    client: Client, settings: Settings, one_street: dict  # noqa: F811
) -> None:
    hugo = one_street["hugo"]
    libby = {"name": "Libby Mamarika", "phone": "(217) 555-4000", "address": HOUSE}
    found = await call(client, "lookup_customer", **libby)
    top = found["matches"][0]
    assert (top["customer_id"], top["name"], top["confidence"], top["level"]) == (hugo, "Hugo Mamarika", "likely", "account")
    assert found["caller"]["status"] == "new" and found["caller"]["name"] == "Libby Mamarika"
    assert "contact_id" not in found["caller"]
    assert "Hugo Mamarika account at 28 Bimberi Crescent" in found["next_step"]

    job = await call(client, "create_job", customer=libby, job_type="hvac", summary="No heat", idempotency_key="l",
                     **MONDAY_9)
    assert (job["customer_id"], job["customer_created"]) == (hugo, False)
    assert job["contacts_added"] == ["+12175554000"] and job["contact_added"].startswith("con_")
    conn = stores.connect(settings.db_path)
    try:
        entry = conn.execute("SELECT actor, arguments, result_id FROM audit_log WHERE tool=?",
                             ("create_job:contact_added",)).fetchall()
    finally:
        conn.close()
    assert [(row[0], row[2]) for row in entry] == [("local", job["contact_added"])]
    assert json.loads(entry[0][1]) == {"customer_id": hugo, "contact_id": job["contact_added"], "contacts_added": ["***00"]}

    by_number = await call(client, "lookup_customer", phone="217-555-4000")  # her number alone
    top = by_number["matches"][0]
    assert (top["customer_id"], top["level"]) == (hugo, "contact") and top["confidence"] in ("exact", "likely")
    assert by_number["caller"] == {"status": "known", "contact_id": job["contact_added"], "name": "Libby Mamarika",
                                   "reasons": ["the number of Libby Mamarika"]}
    by_name = await call(client, "lookup_customer", name="Libby Mamarika", address=HOUSE)
    assert by_name["matches"][0]["level"] == "contact"  # she is the account's person now, not a stranger to confirm
    assert by_name["caller"]["contact_id"] == job["contact_added"]
    himself = await call(client, "lookup_customer", phone="(217) 555-2000")
    assert himself["caller"]["name"] == "Hugo Mamarika" and himself["caller"]["role"] == "owner"

    card = (await call(client, "get_customer", customer_id=hugo))["customer"]
    assert [(c["name"], c["phones"]) for c in card["contacts"]] == \
        [("Hugo Mamarika", ["+12175552000"]), ("Libby Mamarika", ["+12175554000"])]


async def test_booking_again_as_a_known_contact_adds_no_second_contact(
    client: Client, one_street: dict  # noqa: F811
) -> None:
    libby = {"name": "Libby Mamarika", "phone": "(217) 555-4000", "address": HOUSE}
    await call(client, "create_job", customer=libby, job_type="hvac", summary="No heat", idempotency_key="1", **MONDAY_9)
    again = await call(client, "create_job", customer={**libby, "email": "libby@example.com"}, job_type="plumbing",
                       summary="Leak", idempotency_key="2", **MONDAY_9)
    assert again["contacts_added"] == ["libby@example.com"] and "contact_added" not in again
    card = (await call(client, "get_customer", customer_id=one_street["hugo"]))["customer"]
    assert [(c["name"], c["emails"]) for c in card["contacts"]] == \
        [("Hugo Mamarika", ["hugo@example.com"]), ("Libby Mamarika", ["libby@example.com"])]


async def test_a_merge_makes_each_merged_records_people_contacts_of_the_kept_account(client: Client) -> None:
    house = "7 Quarry Lane, Springfield, IL 62704"
    made = {}
    for key, person in {"pat": ("Pat Ng", "(217) 555-7001", "pat@example.com"),
                        "sam": ("Sam Ng", "(217) 555-7002", "sam@example.com"),
                        "again": ("Patricia Ng", "(217) 555-7003", "pat.ng@work.example")}.items():
        name, phone, email = person
        job = await call(client, "create_job", customer={"name": name, "phone": phone, "email": email, "address": house},
                         job_type="hvac", summary="Tune-up", idempotency_key=key, new_customer=True, **MONDAY_9)
        made[key] = job["customer_id"]
    assert len(set(made.values())) == 3
    done = await confirmed(client, "merge_customers", keep_id=made["pat"], merge_ids=[made["sam"], made["again"]],
                           idempotency_key="merge")
    kept = done["keep"]
    assert sorted(p["number"] for p in kept["phones"]) == ["+12175557001", "+12175557002", "+12175557003"]
    assert sorted(kept["emails"]) == ["pat.ng@work.example", "pat@example.com", "sam@example.com"]
    people = {c["name"]: (c["phones"], c["emails"]) for c in kept["contacts"]}
    assert people == {  # Patricia is Pat: one person with both numbers; Sam is another
        "Pat Ng": (["+12175557001", "+12175557003"], ["pat.ng@work.example", "pat@example.com"]),
        "Sam Ng": (["+12175557002"], ["sam@example.com"]),
    }
    sam = await call(client, "lookup_customer", phone="217 555 7002")
    assert sam["matches"][0]["customer_id"] == made["pat"] and sam["caller"]["name"] == "Sam Ng"


async def test_over_fieldpulse_a_household_member_booking_becomes_a_customer_contact_of_her_own(fp: Rig) -> None:
    mary = {"name": "Mary Carter", "phone": "(217) 555-0177", "address": "12 Oak St, Springfield, IL 62701"}
    async with fp.client() as client:
        found = await call(client, "lookup_customer", **mary)
        assert (found["matches"][0]["name"], found["matches"][0]["level"]) == ("William Carter", "account")
        assert found["caller"]["status"] == "new"
        booked = await call(client, "create_job", customer=mary, job_type="Furnace repair", summary="No heat",
                            idempotency_key="mary", **WINDOW)
        assert booked["customer_created"] is False and booked["contacts_added"] == ["+12175550177"]
        made = [k for k in fp.fake.contacts.values() if k["phone"] == "+12175550177"]
        assert [(k["first_name"], k["last_name"]) for k in made] == [("Mary", "Carter")]
        again = await call(client, "lookup_customer", phone="217 555 0177")
        assert again["matches"][0]["name"] == "William Carter"
        assert (again["caller"]["status"], again["caller"]["name"]) == ("known", "Mary Carter")
        bill = await call(client, "lookup_customer", phone="217.555.0143")
        assert bill["caller"]["name"] == "William Carter"


async def test_over_servicetitan_a_household_member_booking_is_a_contact_named_in_its_memo(rig: Rig) -> None:
    mary = {"name": "Mary Carter", "phone": "(217) 555-0177", "address": "12 Oak St, Springfield, IL 62701"}
    async with rig.client() as client:
        booked = await call(client, "create_job", customer=mary, job_type="hvac", summary="No heat",
                            idempotency_key="mary", **WINDOW)
        assert booked["customer_created"] is False and booked["contacts_added"] == ["+12175550177"]
        made = [k for k in rig.fake.customer_contacts.values() if k["value"] == "+12175550177"]
        assert [k["memo"] for k in made] == ["Contact: Mary Carter"]
        again = await call(client, "lookup_customer", phone="217 555 0177")
        assert (again["caller"]["status"], again["caller"]["name"]) == ("known", "Mary Carter")
        bill = await call(client, "lookup_customer", phone="217.555.0143")
        assert (bill["caller"]["name"], bill["caller"]["role"]) == ("William Carter", "owner")
