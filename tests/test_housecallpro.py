"""The tools over Housecall Pro, against the fake built from its published spec: a caller's
whole booking, what the API cannot do told as such, retries that must not duplicate, lost
answers, the directory sync and its changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from fsm_mcp.connectors.housecallpro.backend import HousecallProBackend
from fsm_mcp.connectors.housecallpro.mapping import stamp
from fsm_mcp.connectors.http.client import Policy
from fsm_mcp.connectors.vendor_settings import SettingsError
from fsm_mcp.directory import customers
from fsm_mcp.identity.query import caller_profile
from fsm_mcp.inputs import BookingRequest
from fsm_mcp.settings import Settings
from fsm_mcp.store import open_store
from fsm_mcp.store.db import Database
from fsm_mcp.store.idempotency import Attempt
from tests.fakes.housecallpro import FakeHousecallPro, connector_settings
from tests.hcp_rig import URL, HcpRig, hcp_rig, hcp_settings, seeded  # noqa: F401  (hcp_rig: the fixture `hcp`)
from tests.st_rig import BUSINESS, NEW_CALLER, WINDOW, call
from tests.when import MONDAY, TUESDAY, iso, local, window

pytestmark = pytest.mark.anyio
ADDRESS = "5 Elm St, Springfield, IL 62704"


def only(fake: Any, table: str) -> dict[str, Any]:
    (row,) = getattr(fake.company, table).values()
    return row  # type: ignore[no-any-return]


async def test_a_returning_caller_is_recognised_from_the_synced_directory(hcp: HcpRig) -> None:
    async with hcp.client() as client:
        found = await call(client, "lookup_customer", phone="217.555.0143", name="Bill Carter")
    assert found["matches"][0]["name"] == "William Carter"
    assert found["matches"][0]["confidence"] in ("exact", "likely")
    assert found["customer"]["open_balance"] == "0.00"


async def test_a_new_callers_whole_job_runs_through_housecall_pro(hcp: HcpRig) -> None:
    fake = hcp.fake
    async with hcp.client() as client:
        slots = await call(client, "find_available_slots", job_type="Furnace repair", date_from=MONDAY.isoformat(),
                           date_to=MONDAY.isoformat())
        assert slots["slots"] and slots["slots"][0]["technicians"][0]["name"] == "Dana Reyes"
        booked = await call(client, "create_job", job_type="Furnace repair", summary="No heat", priority="high",
                            idempotency_key="k1", customer=NEW_CALLER, address=ADDRESS, **WINDOW)
        assert booked["customer_created"] and booked["status"] == "scheduled" and booked["priority"] == "high"
        assert booked["summary"] == "No heat" and booked["job_type"] == "Furnace repair"
        job_id = booked["job_id"]
        job = fake.company.jobs[job_id]
        assert job["job_type"]["name"] == "Furnace repair" and job["work_status"] == "scheduled"
        customer = fake.company.customers[job["customer_id"]]
        assert (customer["mobile_number"], customer["email"]) == ("+12175550199", "ann@example.com")
        assert fake.company.addresses[job["address_id"]]["street"] == "5 Elm St"

        dispatched = await call(client, "dispatch_technician", job_id=job_id, technician_id=hcp.tech, idempotency_key="d1")
        assert dispatched["status"] == "dispatched" and dispatched["technician_ids"] == [hcp.tech]
        assert job["assigned_employee_ids"] == [hcp.tech]
        for status in ("en_route", "arrived", "working"):
            moved = await call(client, "update_job_status", job_id=job_id, status=status, note=f"now {status}")
            assert moved["status"] == status
        fake.complete(job_id)  # done in the technician's app
        line = {"description": "Igniter", "kind": "material", "quantity": "1", "unit_price": "89.50"}
        billed = await call(client, "create_invoice", job_id=job_id, line_items=[line], tax_rate="0.08", idempotency_key="i1")
        again = await call(client, "create_invoice", job_id=job_id, line_items=[line], tax_rate="0.08", idempotency_key="i2")
        assert billed["total"] == "96.66" and billed["tax"] == "7.16" and again["already_invoiced"]
        assert billed["invoice_id"] == job["invoice_number"]
        (item,) = fake.company.line_items[job_id]
        assert (item["name"], item["unit_price"], item["kind"], item["taxable"]) == ("Igniter", 8950, "materials", True)

        history = await call(client, "get_job", job_id=job_id)
        assert [h["status"] for h in history["history"]][:4] == ["scheduled", "en_route", "arrived", "working"]
        assert history["status"] == "completed" and history["history"][1]["note"] == "now en_route"
        fake.issue_invoice(job_id)
        card = await call(client, "get_customer", customer_id=booked["customer_id"])
        assert card["recent_jobs"][0]["job_id"] == job_id and card["open_balance"] == "89.50"


async def test_a_retried_booking_books_once_and_a_second_call_finds_the_first(hcp: HcpRig) -> None:
    async with hcp.client() as client:
        args = {"job_type": "Furnace repair", "summary": "No heat", "customer": NEW_CALLER, "address": ADDRESS, **WINDOW}
        first = await call(client, "create_job", idempotency_key="k1", **args)
        replay = await call(client, "create_job", idempotency_key="k1", **args)
        other_key = await call(client, "create_job", idempotency_key="k2", **args)
    assert replay == first
    assert other_key["job_id"] == first["job_id"] and other_key["already_booked"]
    assert len(hcp.fake.company.jobs) == 1 and len(hcp.fake.company.customers) == 2  # the caller was created once


async def test_answers_lost_after_the_writes_are_read_back_instead_of_repeated(hcp: HcpRig) -> None:
    fake = hcp.fake
    fake.chaos.p_lost = 1.0  # every write is done, then its answer lost
    async with hcp.client() as client:
        booked = await call(client, "create_job", job_type="Furnace repair", summary="No heat", idempotency_key="k1",
                            customer=NEW_CALLER, address=ADDRESS, **WINDOW)
        job_id = booked["job_id"]
        await call(client, "dispatch_technician", job_id=job_id, technician_id=hcp.tech, idempotency_key="d1")
        for status in ("en_route", "arrived"):
            await call(client, "update_job_status", job_id=job_id, status=status)
        fake.complete(job_id)
        line = {"description": "Service call", "kind": "service", "quantity": "1", "unit_price": "120"}
        billed = await call(client, "create_invoice", job_id=job_id, line_items=[line], discount="20", idempotency_key="i1")
        returning = await call(client, "create_job", job_type="Drain cleaning", summary="Slow drain", idempotency_key="k2",
                               customer_id=booked["customer_id"], caller_phone="217 555 0100",
                               address="9 Ash St, Springfield, IL 62704", **WINDOW)
    company = fake.company
    assert len(company.customers) == 2 and len(company.jobs) == 2 and fake.lost >= 8
    assert [n["content"].split(" ")[1] for n in company.jobs[job_id]["notes"][1:]] == ["en_route", "arrived"]
    assert [(i["name"], i["amount"]) for i in company.line_items[job_id]] == [("Service call", 12000), ("Discount", 2000)]
    assert billed["total"] == "100.00" and billed["discount"] == "20.00"
    customer = company.customers[booked["customer_id"]]
    assert (customer["mobile_number"], customer["home_number"]) == ("+12175550199", "+12175550100")
    assert returning["contacts_added"] == ["+12175550100"]
    assert len([a for a in company.addresses.values() if a["customer_id"] == booked["customer_id"]]) == 2


async def test_a_call_cut_off_after_housecall_pro_booked_finds_that_job(hcp: HcpRig) -> None:
    db = open_store(hcp.settings.db_path)
    backend = hcp.backend(db)
    carter = caller_profile(name="William Carter", phone="2175550143", email=None, address=None, region="US")
    customer_id = db.read(customers.lookup, BUSINESS.tenant_id, carter, 1)[0].customer_id
    request = BookingRequest(
        customer_id=customer_id, customer=None, address=None, job_type="Furnace repair", summary="x", priority="normal",
        window=(local(MONDAY, 9), local(MONDAY, 11)), technician_id=None, allow_duplicate=True, new_customer=False,
    )
    try:
        first = await backend.create_job(request, Attempt("cut-1"))  # booked at Housecall Pro; its answer never recorded
        again = await backend.create_job(request, Attempt("cut-1", resumed=True))
        other = await backend.create_job(request, Attempt("cut-2", resumed=True))  # allow_duplicate: a second job
    finally:
        await backend.aclose()
        db.close()
    assert again.job.job_id == first.job.job_id and other.job.job_id != first.job.job_id
    assert len(hcp.fake.company.jobs) == 2
    assert all("cut-1" not in n["content"] for j in hcp.fake.company.jobs.values() for n in j["notes"])  # a digest only


async def test_what_housecall_pros_api_cannot_do_is_refused_saying_where_it_is_done(hcp: HcpRig) -> None:
    fake = hcp.fake
    async with hcp.client() as client:
        merge = await client.call_tool("merge_customers", {"keep_id": "cus_1", "merge_ids": ["cus_2"], "idempotency_key": "m"})
        missing = await client.call_tool("get_job", {"job_id": "job_999999"})
        odd = await client.call_tool("get_job", {"job_id": "../customers"})
        unknown = await client.call_tool("create_job", {"job_type": "Roof repair", "summary": "Leak", "idempotency_key": "r",
                                                        "customer": NEW_CALLER, "address": ADDRESS, **WINDOW})
        writes = sum(fake.writes.values())
        booked = await call(client, "create_job", job_type="Furnace repair", summary="No heat", idempotency_key="k1",
                            customer=NEW_CALLER, address=ADDRESS, **WINDOW)
        early = await client.call_tool("update_job_status", {"job_id": booked["job_id"], "status": "working"})
        # refused at the preview, before a person is asked to agree to what cannot then be done
        cancel = await client.call_tool("cancel_job", {"job_id": booked["job_id"], "reason": "moved away"})
        await call(client, "dispatch_technician", job_id=booked["job_id"], technician_id=hcp.tech, idempotency_key="d1")
        await call(client, "update_job_status", job_id=booked["job_id"], status="en_route")
        await call(client, "update_job_status", job_id=booked["job_id"], status="arrived")
        await call(client, "update_job_status", job_id=booked["job_id"], status="working")
        complete = await client.call_tool("update_job_status", {"job_id": booked["job_id"], "status": "completed"})
        bill = await client.call_tool("create_invoice", {"job_id": booked["job_id"], "idempotency_key": "i", "line_items": [
            {"description": "Igniter", "quantity": "1", "unit_price": "10"}]})
    text = [r.content[0].text for r in (merge, missing, odd, unknown, early, cancel, complete, bill)]  # type: ignore[union-attr]
    assert all(r.is_error for r in (merge, missing, odd, unknown, early, cancel, complete, bill))
    assert "merge them in Housecall Pro" in text[0]
    assert "no job with id 'job_999999'" in text[1] and "no job with id '../customers'" in text[2]
    assert "no job type 'Roof repair'" in text[3] and "Drain cleaning, Furnace repair" in text[3] and writes == 0
    assert "a scheduled job cannot become working" in text[4]
    assert "cannot cancel a job" in text[5] and "Housecall Pro app" in text[5]
    assert "cannot complete a job" in text[6]
    assert "only a completed job can be invoiced" in text[7]
    assert fake.company.jobs[booked["job_id"]]["work_status"] == "scheduled" and not fake.company.line_items[booked["job_id"]]


async def test_on_hold_takes_the_job_off_the_schedule_and_a_dispatch_with_a_window_puts_it_back(hcp: HcpRig) -> None:
    job = hcp.fake.company.jobs
    async with hcp.client() as client:
        booked = await call(client, "create_job", job_type="Furnace repair", summary="No heat", idempotency_key="k1",
                            customer=NEW_CALLER, address=ADDRESS, **WINDOW)
        job_id = booked["job_id"]
        held = await call(client, "update_job_status", job_id=job_id, status="on_hold", note="waiting for a part")
        assert held["status"] == "on_hold" and job[job_id]["work_status"] == "needs scheduling"
        no_time = await client.call_tool("dispatch_technician", {"job_id": job_id, "technician_id": hcp.tech,
                                                                 "idempotency_key": "d0"})
        assert no_time.is_error and "no time in Housecall Pro" in no_time.content[0].text  # type: ignore[union-attr]
        back = await call(client, "dispatch_technician", job_id=job_id, technician_id=hcp.tech, idempotency_key="d1",
                          **window(TUESDAY, 13))
        assert back["status"] == "dispatched" and back["window_start"] == iso(TUESDAY, 13)
        undone = await call(client, "update_job_status", job_id=job_id, status="scheduled")
    assert undone["status"] == "scheduled" and undone["technician_ids"] == [] and job[job_id]["assigned_employee_ids"] == []
    assert [h["status"] for h in undone["history"]] == ["scheduled", "on_hold", "scheduled"]  # as fsm-mcp set them
    assert undone["history"][1]["note"] == "waiting for a part"


async def test_a_technician_booked_elsewhere_is_refused_naming_the_clashing_job(hcp: HcpRig) -> None:
    async with hcp.client() as client:
        first = await call(client, "create_job", job_type="Furnace repair", summary="No heat", idempotency_key="k1",
                           customer=NEW_CALLER, address=ADDRESS, technician_id=hcp.tech, **WINDOW)
        second = await call(client, "create_job", job_type="Furnace repair", summary="Cold", idempotency_key="k2",
                            customer={"name": "Maria Gomez", "phone": "217 555 0166"},
                            address="8 Pine Rd, Springfield, IL 62702", **WINDOW)
        clash = await client.call_tool("dispatch_technician", {"job_id": second["job_id"], "technician_id": hcp.tech,
                                                               "idempotency_key": "d2"})
        slots = await call(client, "find_available_slots", job_type="Furnace repair", date_from=MONDAY.isoformat(),
                           date_to=MONDAY.isoformat())
    assert first["status"] == "dispatched"
    assert clash.is_error and first["job_id"] in clash.content[0].text  # type: ignore[union-attr]
    assert all(s["window_start"] != WINDOW["window_start"] or not s["technicians"] for s in slots["slots"]
               if s["window_start"].startswith(WINDOW["window_start"]))


async def test_the_directory_follows_changes_at_housecall_pro(hcp: HcpRig) -> None:
    company = hcp.fake.company
    carter = next(c for c in company.customers.values() if c["first_name"] == "William")
    carter.update(mobile_number="217-555-0177", updated_at=stamp(local(MONDAY, 9)))  # changed in the app, since the sync
    maria = hcp.fake.add_customer("Maria Gomez", "8 Pine Rd", "Springfield", "62702", mobile="217 555 0166")
    stored = await hcp.sync()
    assert 2 <= stored["customers"] <= 3
    async with hcp.client() as client:
        new_number = await call(client, "lookup_customer", phone="2175550177")
        old_number = await call(client, "lookup_customer", phone="2175550143")
        found = await call(client, "lookup_customer", phone="2175550166", address="8 Pine Rd, Springfield")
    assert new_number["matches"][0]["name"] == "William Carter"
    assert old_number["matches"] == []
    assert found["matches"][0]["customer_id"] == maria


async def test_a_first_sync_killed_halfway_resumes_where_it_stopped(tmp_path: Path) -> None:
    fake = FakeHousecallPro()
    for n in range(450):
        fake.add_customer(f"Customer {n}", f"{n} Main St", "Springfield", "62701", mobile=f"217555{n:04d}")
    pages: list[str] = []
    budget = {"left": 2}

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/customers":
            if budget["left"] == 0:
                raise httpx.ConnectError("killed", request=request)
            budget["left"] -= 1
            pages.append(request.url.params["page"])
        return await httpx.ASGITransport(fake.app).handle_async_request(request)

    db = Database(tmp_path / "s.db")
    backend = HousecallProBackend.open(db, BUSINESS, connector_settings(URL), httpx.MockTransport(handler))
    backend.sync.in_flight = 1
    backend.api.client.policy = Policy(attempts=1, budget=1)
    with pytest.raises(Exception, match=r"unreachable|stopped calling"):
        await backend.sync.run()
    count = "SELECT count(*) FROM customers"
    assert db.read(lambda c: c.execute(count).fetchone()[0]) == 200
    assert db.read(lambda c: c.execute("SELECT count(*) FROM locations").fetchone()[0]) == 200
    budget["left"], pages[:] = 10_000, []
    backend.api.client.breaker.succeeded()
    await backend.sync.run()
    assert db.read(lambda c: c.execute(count).fetchone()[0]) == 450
    assert pages[0] == "3"  # it did not start over
    await backend.aclose()
    db.close()


def test_missing_housecall_pro_settings_are_named_as_the_user_sets_them(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.load(env={"FSM_MCP_BACKEND": "housecallpro"})
    assert "FSM_MCP_HOUSECALLPRO_API_KEY (or api_key in the [housecallpro] table) is missing" in str(caught.value)
    config = tmp_path / "fsm.toml"
    config.write_text('[businesses.acme]\nbackend = "housecallpro"\n[businesses.acme.housecallpro]\nrate = 5\n')
    with pytest.raises(ValueError) as per_business:
        Settings.load(env={"FSM_MCP_CONFIG": str(config)})
    assert "FSM_MCP_ACME_HOUSECALLPRO_API_KEY (or api_key in the [businesses.acme.housecallpro] table)" in str(per_business.value)
    given = Settings.load(env={"FSM_MCP_CONFIG": str(config), "FSM_MCP_ACME_HOUSECALLPRO_API_KEY": "secret",
                               "FSM_MCP_ACME_HOUSECALLPRO_API_URL": "http://hcp.test"})
    assert given.housecallpro is not None and given.housecallpro.api_url == "http://hcp.test"
    assert given.housecallpro.rate == 5 and "secret" not in repr(given)


async def test_a_company_api_key_is_enough_for_every_tool(tmp_path: Path) -> None:
    fake, tech = seeded(strict_keys=True)  # /schedule and /dispatch refuse a company key, as their security says
    rig = HcpRig(fake, hcp_settings(tmp_path / "k.db"), httpx.ASGITransport(fake.app), tech)
    await rig.sync()
    async with rig.client() as client:
        booked = await call(client, "create_job", job_type="Furnace repair", summary="No heat", idempotency_key="k1",
                            customer=NEW_CALLER, address=ADDRESS, technician_id=tech, **WINDOW)
        moved = await call(client, "dispatch_technician", job_id=booked["job_id"], technician_id=tech, idempotency_key="d1",
                           **window(TUESDAY, 10))
        held = await call(client, "update_job_status", job_id=booked["job_id"], status="on_hold")
    assert booked["status"] == "dispatched" and moved["window_start"] == iso(TUESDAY, 10) and held["status"] == "on_hold"
    assert all(x.status < 400 for x in fake.door.log)


async def test_tool_descriptions_tell_what_works_differently_over_housecall_pro(hcp: HcpRig) -> None:
    async with hcp.client() as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
    assert "cannot start, complete or cancel a job" in (listed["update_job_status"].description or "")
    assert "cannot create invoices" in (listed["create_invoice"].description or "")
    assert "merge them in Housecall Pro" in (listed["merge_customers"].description or "")
    assert all(t.annotations and t.annotations.open_world_hint for t in listed.values())
