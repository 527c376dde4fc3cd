"""The tools over FieldPulse, against the fake built from its published spec: a caller's
whole booking, retries that must not duplicate, lost answers, the quota, the directory sync."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import httpx2 as httpx
import pytest

from fsm_mcp.connectors.fieldpulse.backend import FieldPulseBackend
from fsm_mcp.connectors.http.client import Policy
from fsm_mcp.connectors.vendor_settings import SettingsError
from fsm_mcp.directory import customers
from fsm_mcp.identity.query import caller_profile
from fsm_mcp.inputs import BookingRequest
from fsm_mcp.settings import Settings
from fsm_mcp.store import open_store
from fsm_mcp.store.db import Database
from fsm_mcp.store.idempotency import Attempt
from tests.fakes.fieldpulse import FakeFieldPulse, connector_settings
from tests.st_rig import BUSINESS, NEW_CALLER, WINDOW, Rig, call
from tests.when import MONDAY, local

pytestmark = pytest.mark.anyio
ADDRESS = "5 Elm St, Springfield, IL 62704"


async def test_a_returning_caller_is_recognised_from_the_synced_directory(fp: Rig) -> None:
    async with fp.client() as client:
        found = await call(client, "lookup_customer", phone="217.555.0143", name="Bill Carter")
    assert found["matches"][0]["name"] == "William Carter"
    assert found["matches"][0]["confidence"] in ("exact", "likely")
    assert found["customer"]["open_balance"] == "0.00"


async def test_a_new_callers_whole_job_runs_through_fieldpulse(fp: Rig) -> None:
    async with fp.client() as client:
        slots = await call(client, "find_available_slots", job_type="Furnace repair", date_from=MONDAY.isoformat(),
                           date_to=MONDAY.isoformat())
        assert slots["slots"] and slots["slots"][0]["technicians"][0]["name"] == "Dana Reyes"
        booked = await call(client, "create_job", job_type="Furnace repair", summary="No heat", priority="high",
                            idempotency_key="k1", customer=NEW_CALLER, address=ADDRESS, **WINDOW)
        assert booked["customer_created"] and booked["status"] == "scheduled" and booked["priority"] == "high"
        job = fp.fake.jobs[int(booked["job_id"])]
        assert job["start_time"] == f"{MONDAY.isoformat()} 15:00:00" and job["job_type"] == "Furnace repair"
        customer = fp.fake.customers[job["customer_id"]]
        assert (customer["phone"], customer["email"]) == ("+12175550199", "ann@example.com")
        assert fp.fake.locations[int(job["location_id"])]["address_1"] == "5 Elm St"

        job_id = booked["job_id"]
        dispatched = await call(client, "dispatch_technician", job_id=job_id, technician_id=fp.tech, idempotency_key="d1")
        assert dispatched["status"] == "dispatched" and dispatched["technician_ids"] == [fp.tech]
        for status, code in (("en_route", 6), ("arrived", 2), ("working", 2)):
            moved = await call(client, "update_job_status", job_id=job_id, status=status, note=f"now {status}")
            assert moved["status"] == status and job["status"] == code
        done = await call(client, "update_job_status", job_id=job_id, status="completed")
        assert done["status"] == "completed" and job["status"] == 4

        line = {"description": "Igniter", "kind": "material", "quantity": "1", "unit_price": "89.50"}
        billed = await call(client, "create_invoice", job_id=job_id, line_items=[line], tax_rate="0.08", idempotency_key="i1")
        again = await call(client, "create_invoice", job_id=job_id, line_items=[line], tax_rate="0.08", idempotency_key="i2")
        assert billed["total"] == "96.66" and billed["tax"] == "7.16" and again["already_invoiced"]
        assert len(fp.fake.invoices) == 1 and fp.fake.invoices[int(billed["invoice_id"])]["line_items"][0]["unit_price"] == "89.50"

        history = await call(client, "get_job", job_id=job_id)
        assert [h["status"] for h in history["history"]] == ["scheduled", "en_route", "arrived", "working", "completed"]
        assert history["history"][1]["note"] == "now en_route"
        card = await call(client, "get_customer", customer_id=booked["customer_id"])
        assert card["recent_jobs"][0]["job_id"] == job_id and card["open_balance"] == "96.66"


async def test_a_retried_booking_books_once_and_a_second_call_finds_the_first(fp: Rig) -> None:
    async with fp.client() as client:
        args = {"job_type": "Furnace repair", "summary": "No heat", "customer": NEW_CALLER, "address": ADDRESS, **WINDOW}
        first = await call(client, "create_job", idempotency_key="k1", **args)
        replay = await call(client, "create_job", idempotency_key="k1", **args)
        other_key = await call(client, "create_job", idempotency_key="k2", **args)
    assert replay == first
    assert other_key["job_id"] == first["job_id"] and other_key["already_booked"]
    assert len(fp.fake.jobs) == 1 and len(fp.fake.customers) == 2  # the caller was created once


async def test_answers_lost_after_the_writes_are_read_back_instead_of_repeated(fp: Rig) -> None:
    fp.fake.chaos.p_lost = 1.0  # every write is done, then its answer lost
    async with fp.client() as client:
        booked = await call(client, "create_job", job_type="Furnace repair", summary="No heat", idempotency_key="k1",
                            customer=NEW_CALLER, address=ADDRESS, **WINDOW)
        await call(client, "dispatch_technician", job_id=booked["job_id"], technician_id=fp.tech, idempotency_key="d1")
        for status in ("arrived", "working", "completed"):
            await call(client, "update_job_status", job_id=booked["job_id"], status=status)
        line = {"description": "Service call", "kind": "service", "quantity": "1", "unit_price": "120"}
        await call(client, "create_invoice", job_id=booked["job_id"], line_items=[line], idempotency_key="i1")
    assert len(fp.fake.customers) == 2 and len(fp.fake.jobs) == 1 and len(fp.fake.invoices) == 1
    assert [c["text"] for c in fp.fake.comments.values()] == ["[fsm-mcp] arrived", "[fsm-mcp] working", "[fsm-mcp] completed"]


async def test_a_call_cut_off_after_the_vendor_booked_finds_that_job(fp: Rig) -> None:
    db = open_store(fp.settings.db_path)
    backend = fp.backend(db)
    carter = caller_profile(name="William Carter", phone="2175550143", email=None, address=None, region="US")
    customer_id = db.read(customers.lookup, BUSINESS.tenant_id, carter, 1)[0].customer_id
    request = BookingRequest(
        customer_id=customer_id, customer=None, address=None, job_type="Furnace repair", summary="x", priority="normal",
        window=(local(MONDAY, 9), local(MONDAY, 11)), technician_id=None,
        allow_duplicate=True, new_customer=False,
    )
    try:
        first = await backend.create_job(request, Attempt("cut-1"))  # booked at FieldPulse; its answer never recorded here
        again = await backend.create_job(request, Attempt("cut-1", resumed=True))
    finally:
        await backend.aclose()
        db.close()
    assert again.job.job_id == first.job.job_id and len(fp.fake.jobs) == 1


async def test_fieldpulse_refusals_and_gaps_come_back_as_plain_tool_errors(fp: Rig) -> None:
    async with fp.client() as client:
        merge = await client.call_tool("merge_customers", {"keep_id": "1", "merge_ids": ["2"],
                                                           "idempotency_key": "m"})
        missing = await client.call_tool("get_job", {"job_id": "999999"})
        booked = await call(client, "create_job", job_type="Furnace repair", summary="No heat", idempotency_key="k1",
                            customer=NEW_CALLER, address=ADDRESS, **WINDOW)
        early = await client.call_tool("update_job_status", {"job_id": booked["job_id"], "status": "working"})
    assert merge.is_error and "merge them in FieldPulse" in merge.content[0].text  # type: ignore[union-attr]
    assert missing.is_error and "no job with id '999999'" in missing.content[0].text  # type: ignore[union-attr]
    assert early.is_error and "a scheduled job cannot become working" in early.content[0].text  # type: ignore[union-attr]
    assert fp.fake.jobs[int(booked["job_id"])]["status"] == 1


async def test_a_spent_monthly_quota_is_told_with_when_it_resets_not_retried(fp: Rig) -> None:
    fp.fake.quota = 0
    async with fp.client() as client:
        with anyio.fail_after(5):  # not 12 s of retries: the quota resets next month
            refused = await client.call_tool("get_job", {"job_id": "123"})
    text = refused.content[0].text  # type: ignore[union-attr]
    assert refused.is_error and "monthly request quota" in text and "days" in text and "x-api-key" not in text


async def test_the_directory_follows_changes_at_fieldpulse(fp: Rig) -> None:
    carter = next(c for c in fp.fake.customers.values() if c["display_name"] == "William Carter")
    carter.update(phone="217-555-0177", updated_at="2100-01-01 00:00:00")  # changed at the vendor
    fp.fake.add_customer("Maria Gomez", "8 Pine Rd", "Springfield", "62702", phones=("217 555 0166",))
    stored = await fp.sync()
    assert stored["customers"] >= 2
    async with fp.client() as client:
        new_number = await call(client, "lookup_customer", phone="2175550177")
        old_number = await call(client, "lookup_customer", phone="2175550143")
        maria = await call(client, "lookup_customer", phone="2175550166")
    assert new_number["matches"][0]["name"] == "William Carter"
    assert old_number["matches"] == []
    assert maria["matches"][0]["name"] == "Maria Gomez"


async def test_a_first_sync_killed_halfway_resumes_where_it_stopped(tmp_path: Path) -> None:
    fake = FakeFieldPulse()
    for n in range(450):
        fake.add_customer(f"Customer {n}", f"{n} Main St", "Springfield", "62701", phones=(f"217555{n:04d}",))
    pages: list[str] = []
    budget = {"left": 2}

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/customers" and request.url.params.get("page"):
            if budget["left"] == 0:
                raise httpx.ConnectError("killed", request=request)
            budget["left"] -= 1
            pages.append(request.url.params["page"])
        return await httpx.ASGITransport(fake.app).handle_async_request(request)

    config = connector_settings("http://fp.test")
    db = Database(tmp_path / "s.db")
    backend = FieldPulseBackend.open(db, BUSINESS, config, httpx.MockTransport(handler))
    backend.sync.in_flight = 1
    backend.api.client.policy = Policy(attempts=1, budget=1)
    with pytest.raises(Exception, match=r"unreachable|stopped calling"):
        await backend.sync.run()
    assert db.read(lambda c: c.execute("SELECT count(*) FROM customers").fetchone()[0]) == 200
    budget["left"], pages[:] = 10_000, []
    backend.api.client.breaker.succeeded()
    await backend.sync.run()
    assert db.read(lambda c: c.execute("SELECT count(*) FROM customers").fetchone()[0]) == 450
    assert pages[0] == "3"  # it did not start over
    await backend.aclose()
    db.close()


def test_missing_fieldpulse_settings_are_named_as_the_user_sets_them() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.load(env={"FSM_MCP_BACKEND": "fieldpulse"})
    assert "FSM_MCP_FIELDPULSE_API_KEY (or api_key in the [fieldpulse] table) is missing" in str(caught.value)


async def test_tool_descriptions_tell_what_works_differently_over_fieldpulse(fp: Rig) -> None:
    async with fp.client() as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
    assert "recorded as a job comment" in (listed["update_job_status"].description or "")
    assert "merge them in FieldPulse" in (listed["merge_customers"].description or "")
    assert all(t.annotations and t.annotations.open_world_hint for t in listed.values())


def test_the_readmes_skills_table_is_what_the_connector_reads(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```toml\n(.*?)```", readme, re.S) if "[fieldpulse.skills]" in b]
    config = tmp_path / "fsm.toml"
    config.write_text(block)
    settings = Settings.load(env={"FSM_MCP_CONFIG": str(config), "FSM_MCP_BACKEND": "fieldpulse",
                                  "FSM_MCP_FIELDPULSE_API_KEY": "k"})
    assert settings.fieldpulse is not None and settings.fieldpulse.skills == {"Dana Reyes": ["hvac", "plumbing"]}
