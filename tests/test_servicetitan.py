"""The tools over ServiceTitan, against the fake built from its published spec: a caller's
whole booking, retries that must not duplicate, lost answers, the directory sync."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import anyio
import httpx2 as httpx
import pytest

from fsm_mcp.connectors.http.client import Policy
from fsm_mcp.connectors.servicetitan.backend import ServiceTitanBackend
from fsm_mcp.connectors.servicetitan.config import SettingsError
from fsm_mcp.directory import customers
from fsm_mcp.identity.query import caller_profile
from fsm_mcp.inputs import BookingRequest
from fsm_mcp.settings import Settings
from fsm_mcp.store import open_store
from fsm_mcp.store.idempotency import Attempt
from tests.fakes.servicetitan import APP_GUID, CAMPAIGN, FakeServiceTitan
from tests.st_rig import BUSINESS, NEW_CALLER, WINDOW, Rig, call, st_settings
from tests.when import MONDAY, at, local

pytestmark = pytest.mark.anyio


async def test_a_returning_caller_is_recognised_from_the_synced_directory(rig: Rig) -> None:
    async with rig.client() as client:
        found = await call(client, "lookup_customer", phone="217.555.0143", name="Bill Carter")
    assert found["matches"][0]["name"] == "William Carter"
    assert found["matches"][0]["confidence"] in ("exact", "likely")
    assert found["customer"]["open_balance"] == "0.00"


async def test_a_new_callers_whole_job_runs_through_servicetitan(rig: Rig) -> None:
    async with rig.client() as client:
        slots = await call(client, "find_available_slots", job_type="Furnace repair", date_from=MONDAY.isoformat(),
                           date_to=MONDAY.isoformat())
        assert slots["slots"] and slots["slots"][0]["technicians"][0]["name"] == "Dana Reyes"
        booked = await call(client, "create_job", job_type="Furnace repair", summary="No heat", idempotency_key="k1",
                            customer=NEW_CALLER, address="5 Elm St, Springfield, IL 62704", **WINDOW)
        assert booked["customer_created"] and booked["status"] == "scheduled"
        job_id = booked["job_id"]
        job = rig.fake.jobs[int(job_id)]
        assert job["campaignId"] == CAMPAIGN and job["businessUnitId"] == 10 and job["priority"] == "Normal"
        assert rig.fake.external[int(job_id)][APP_GUID] == [{"key": "fsm-mcp-idempotency-key", "value": "k1"}]
        contacts = {c["value"] for c in rig.fake.customer_contacts.values() if c["customerId"] == job["customerId"]}
        assert contacts == {"+12175550199", "ann@example.com"}

        dispatched = await call(client, "dispatch_technician", job_id=job_id, technician_id=rig.tech, idempotency_key="d1")
        assert dispatched["status"] == "dispatched" and dispatched["technician_ids"] == [rig.tech]
        for status in ("en_route", "arrived", "working"):
            moved = await call(client, "update_job_status", job_id=job_id, status=status, note=f"now {status}")
            assert moved["status"] == status
        assert rig.fake.notes[int(job_id)][0]["text"] == "[fsm-mcp] en_route: now en_route"
        done = await call(client, "update_job_status", job_id=job_id, status="completed")
        assert done["status"] == "completed" and job["jobStatus"] == "Completed" and job["completedOn"].endswith("Z")

        line = {"description": "Igniter", "kind": "material", "quantity": "1", "unit_price": "89.50"}
        billed = await call(client, "create_invoice", job_id=job_id, line_items=[line], tax_rate="0.08",
                            idempotency_key="i1")
        again = await call(client, "create_invoice", job_id=job_id, line_items=[line], tax_rate="0.08",
                           idempotency_key="i1")
        assert billed == again and billed["total"] == "96.66" and billed["tax"] == "7.16"
        invoices = [i for i in rig.fake.invoices.values() if i["job"]["id"] == int(job_id)]
        assert len(invoices) == 1 and len(invoices[0]["items"]) == 1  # filled, not a second invoice

        history = await call(client, "get_job", job_id=job_id)
        assert [h["status"] for h in history["history"]] == ["scheduled", "en_route", "arrived", "working", "completed"]


async def test_a_retried_booking_books_once_and_a_second_call_finds_the_first(rig: Rig) -> None:
    async with rig.client() as client:
        args = {"job_type": "Furnace repair", "summary": "No heat", "customer": NEW_CALLER,
                "address": "5 Elm St, Springfield, IL 62704", **WINDOW}
        first = await call(client, "create_job", idempotency_key="k1", **args)
        replay = await call(client, "create_job", idempotency_key="k1", **args)
        other_key = await call(client, "create_job", idempotency_key="k2", **args)
    assert replay == first
    assert other_key["job_id"] == first["job_id"] and other_key["already_booked"]
    assert len(rig.fake.jobs) == 1 and len(rig.fake.customers) == 2  # the caller was created once


async def test_answers_lost_after_the_writes_are_read_back_instead_of_repeated(rig: Rig) -> None:
    rig.fake.chaos.p_lost = 1.0  # every write is done, then its answer lost
    async with rig.client() as client:
        booked = await call(client, "create_job", job_type="Furnace repair", summary="No heat", idempotency_key="k1",
                            customer=NEW_CALLER, address="5 Elm St, Springfield, IL 62704", **WINDOW)
        await call(client, "dispatch_technician", job_id=booked["job_id"], technician_id=rig.tech, idempotency_key="d1")
        for status in ("arrived", "working", "completed"):
            await call(client, "update_job_status", job_id=booked["job_id"], status=status)
        line = {"description": "Service call", "kind": "service", "quantity": "1", "unit_price": "120"}
        await call(client, "create_invoice", job_id=booked["job_id"], line_items=[line], idempotency_key="i1")
    assert len(rig.fake.customers) == 2 and len(rig.fake.jobs) == 1
    assert len(rig.fake.assignments) == 1 and len(rig.fake.notes[int(booked["job_id"])]) == 2
    assert [len(i["items"]) for i in rig.fake.invoices.values()] == [1]


async def test_a_call_cut_off_after_the_vendor_booked_finds_that_job_by_its_key(rig: Rig) -> None:
    db = open_store(rig.settings.db_path)
    backend = rig.backend(db)
    carter = caller_profile(name="William Carter", phone="2175550143", email=None, address=None, region="US")
    customer_id = db.read(customers.lookup, BUSINESS.tenant_id, carter, 1)[0].customer_id
    request = BookingRequest(
        customer_id=customer_id, customer=None, address=None, job_type="Furnace repair", summary="x", priority="normal",
        window=(local(MONDAY, 9), local(MONDAY, 11)), technician_id=None,
        allow_duplicate=True, new_customer=False,
    )
    try:
        first = await backend.create_job(request, Attempt("cut-1"))  # booked at ServiceTitan; its answer never recorded here
        again = await backend.create_job(request, Attempt("cut-1", resumed=True))
    finally:
        await backend.aclose()
        db.close()
    assert again.job.job_id == first.job.job_id and len(rig.fake.jobs) == 1


async def test_servicetitan_refusals_and_gaps_come_back_as_plain_tool_errors(rig: Rig) -> None:
    async with rig.client() as client:
        unknown = await client.call_tool("create_job", {"job_type": "Roof repair", "summary": "leak", "idempotency_key": "x",
                                                        "customer": NEW_CALLER, "address": "5 Elm St, Springfield, IL 62704",
                                                        **WINDOW})
        merge = await client.call_tool("merge_customers", {"keep_id": "1", "merge_ids": ["2"],
                                                           "idempotency_key": "m"})
        missing = await client.call_tool("get_job", {"job_id": "999999"})
    assert unknown.is_error and "no job type named 'Roof repair'" in unknown.content[0].text  # type: ignore[union-attr]
    assert merge.is_error and "merge them in ServiceTitan" in merge.content[0].text  # type: ignore[union-attr]
    assert missing.is_error and "no job with id '999999'" in missing.content[0].text  # type: ignore[union-attr]
    assert len(rig.fake.jobs) == 0


async def test_the_directory_follows_changes_at_servicetitan(rig: Rig) -> None:
    carter = next(c for c in rig.fake.customers.values() if c["name"] == "William Carter")
    phone = next(k for k in rig.fake.customer_contacts.values() if k["customerId"] == carter["id"] and k["type"] == "MobilePhone")
    phone.update(value="217-555-0177", modifiedOn="2100-01-01T00:00:00Z")  # changed at the vendor
    rig.fake.add_customer("Maria Gomez", "8 Pine Rd", "Springfield", "62702", phones=["217 555 0166"])
    stored = await rig.sync()
    assert stored["customers"] >= 1 and stored["customer-contacts"] >= 1
    async with rig.client() as client:
        new_number = await call(client, "lookup_customer", phone="2175550177")
        old_number = await call(client, "lookup_customer", phone="2175550143")
        maria = await call(client, "lookup_customer", phone="2175550166")
    assert new_number["matches"][0]["name"] == "William Carter"
    assert old_number["matches"] == []
    assert maria["matches"][0]["name"] == "Maria Gomez"


async def test_a_first_sync_killed_halfway_resumes_where_it_stopped(tmp_path: Path) -> None:
    fake = FakeServiceTitan()
    for n in range(120):
        fake.add_customer(f"Customer {n}", f"{n} Main St", "Springfield", "62701", phones=[f"217555{n:04d}"])
    pages: list[str] = []
    budget = {"left": 7}

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/customers") and request.url.params.get("page"):
            if budget["left"] == 0:
                raise httpx.ConnectError("killed", request=request)
            budget["left"] -= 1
            pages.append(request.url.params["page"])
        inner = httpx.ASGITransport(fake.app)
        return await inner.handle_async_request(request)

    settings = Settings(db_path=tmp_path / "s.db", business=BUSINESS, backend="servicetitan", servicetitan=st_settings(sync_page_size=10))
    db = open_store(settings.db_path)
    assert settings.servicetitan is not None
    backend = ServiceTitanBackend.open(db, BUSINESS, settings.servicetitan, httpx.MockTransport(handler))
    backend.sync.in_flight = 2
    backend.api.client.policy = Policy(attempts=1, budget=1)
    with pytest.raises(Exception, match=r"unreachable|stopped calling"):
        await backend.sync.run()
    stored_before = db.read(lambda c: c.execute("SELECT count(*) FROM customers").fetchone()[0])
    assert 0 < stored_before < 120
    budget["left"], pages[:] = 10_000, []
    backend.api.client.breaker.succeeded()
    await backend.sync.run()
    assert db.read(lambda c: c.execute("SELECT count(*) FROM customers").fetchone()[0]) == 120
    assert "1" not in pages  # it did not start over
    await backend.aclose()
    db.close()


def test_missing_servicetitan_settings_are_named_as_the_user_sets_them() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.load(env={"FSM_MCP_BACKEND": "servicetitan", "FSM_MCP_SERVICETITAN_TENANT_ID": "1001"})
    message = str(caught.value)
    for name in ("CLIENT_ID", "CLIENT_SECRET", "APP_KEY", "APP_GUID", "CAMPAIGN_ID", "BUSINESS_UNIT_ID"):
        assert f"FSM_MCP_SERVICETITAN_{name}" in message
    assert "TENANT_ID" not in message


async def test_tool_descriptions_tell_what_works_differently_over_servicetitan(rig: Rig) -> None:
    async with rig.client() as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
    assert "job notes, which get_job reads back" in (listed["update_job_status"].description or "")
    assert "merge them in ServiceTitan" in (listed["merge_customers"].description or "")
    assert all(t.annotations and t.annotations.open_world_hint for t in listed.values())


async def test_the_server_keeps_the_directory_synced_in_the_background(rig: Rig) -> None:
    rig.settings.servicetitan = st_settings(sync_interval=0.2)
    async with rig.client() as client:
        rig.fake.add_customer("Maria Gomez", "8 Pine Rd", "Springfield", "62702", phones=["217 555 0166"])
        with anyio.fail_after(10):
            while not (await call(client, "lookup_customer", phone="2175550166"))["matches"]:
                await anyio.sleep(0.1)


async def test_a_customer_with_many_jobs_is_looked_up_with_one_page_of_them(rig: Rig) -> None:
    async with rig.client() as client:
        william = (await call(client, "lookup_customer", phone="2175550143"))["matches"][0]["customer_id"]
        for day in range(12):
            await call(client, "create_job", customer_id=william, job_type="Furnace repair", summary=f"visit {day}",
                       idempotency_key=f"j{day}", window_start=at(MONDAY + timedelta(days=day), 9),
                       window_end=at(MONDAY + timedelta(days=day), 10))
        rig.fake.door.log.clear()
        card = (await call(client, "lookup_customer", phone="2175550143"))["customer"]
    assert [j["summary"] for j in card["recent_jobs"]] == [f"visit {d}" for d in range(11, 6, -1)]
    assert sum(x.path.endswith("/jpm/v2/tenant/1001/jobs") for x in rig.fake.door.log) == 1


async def test_an_invoice_left_part_filled_is_finished_by_the_retry_not_reported_as_billed(rig: Rig) -> None:
    """A call cut off after its first line (a crash between two PATCHes) left the invoice short: the retry adds
    the lines still missing and the tax, once, instead of taking the part-filled invoice as already billed."""
    lines = [{"description": "Igniter", "kind": "material", "quantity": "1", "unit_price": "89.50"},
             {"description": "Labor", "kind": "labor", "quantity": "2", "unit_price": "60"}]
    async with rig.client() as client:
        booked = await call(client, "create_job", job_type="Furnace repair", summary="No heat", idempotency_key="k1",
                            customer=NEW_CALLER, address="5 Elm St, Springfield, IL 62704", **WINDOW)
        job_id = booked["job_id"]
        await call(client, "dispatch_technician", job_id=job_id, technician_id=rig.tech, idempotency_key="d1")
        for status in ("arrived", "working", "completed"):
            await call(client, "update_job_status", job_id=job_id, status=status)
        [invoice] = [i for i in rig.fake.invoices.values() if i["job"]["id"] == int(job_id)]
        rig.fake.add_item(_Path(invoice["id"]), {"description": "Igniter", "quantity": 1, "unitPrice": 89.5})
        billed = await call(client, "create_invoice", job_id=job_id, line_items=lines, tax_rate="0.08",
                            idempotency_key="i1")
        again = await call(client, "create_invoice", job_id=job_id, line_items=lines, tax_rate="0.08",
                           idempotency_key="i2")
        office = [{"description": "Filter", "kind": "material", "quantity": "1", "unit_price": "20"}]
        other = await call(client, "create_invoice", job_id=job_id, line_items=office, idempotency_key="i3")
    assert [i["description"] for i in invoice["items"]] == ["Igniter", "Labor"]
    assert billed["total"] == "226.26" and billed["tax"] == "16.76" and not billed["already_invoiced"]
    assert again["already_invoiced"] and again["total"] == "226.26"  # all there, tax set: nothing sent again
    assert other["already_invoiced"] and len(invoice["items"]) == 2  # other lines: billed already, untouched


class _Path:
    """What the fake's handlers read of a request: the id in its path."""

    def __init__(self, path_id: int) -> None:
        self.path_id = path_id
