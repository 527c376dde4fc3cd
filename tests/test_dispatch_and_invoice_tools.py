"""Dispatching, job states and invoicing through the real MCP client."""

from collections.abc import Callable
from typing import Any

import pytest
from mcp import Client

from fsm_mcp.settings import Settings
from tests import stores
from tests.conftest import MONDAY_9, NEW_CALLER, call, count, fail
from tests.when import MONDAY, iso, window

pytestmark = pytest.mark.anyio


async def booked(client: Client, key: str = "job", **overrides: Any) -> dict[str, Any]:
    args = {"customer": NEW_CALLER, "job_type": "hvac", "summary": "no heat", "idempotency_key": key, **MONDAY_9}
    return await call(client, "create_job", **{**args, **overrides})


async def completed(client: Client, tech: str) -> dict[str, Any]:
    job = await booked(client)
    await call(client, "dispatch_technician", job_id=job["job_id"], technician_id=tech)
    for status in ("en_route", "arrived", "working", "completed"):
        job = await call(client, "update_job_status", job_id=job["job_id"], status=status)
    return job


LINES = [
    {"description": "Diagnostic", "quantity": "1", "unit_price": "89.00", "kind": "service"},
    {"description": "Labor", "quantity": "1.5", "unit_price": "110.00", "kind": "labor"},
]


async def test_dispatch_makes_a_scheduled_job_dispatched(client: Client, add_technician: Callable[..., str]) -> None:
    tech = add_technician("Maria Lopez", ["hvac"])
    job = await booked(client)
    dispatched = await call(client, "dispatch_technician", job_id=job["job_id"], technician_id=tech)
    assert dispatched["status"] == "dispatched" and dispatched["technician_ids"] == [tech]


async def test_a_double_booked_technician_is_refused_naming_the_other_job(
    client: Client, add_technician: Callable[..., str], settings: Settings
) -> None:
    tech = add_technician("Maria Lopez", ["hvac"])
    first = await booked(client, technician_id=tech)
    other = await booked(client, key="other", customer={"name": "Linda Park", "phone": "217-555-0177",
                                                        "address": "88 Elm Ave Apt 2"},
                         **window(MONDAY, 10))
    message = await fail(client, "dispatch_technician", job_id=other["job_id"], technician_id=tech)
    assert first["job_id"] in message and "Maria Lopez" in message
    assert (await call(client, "get_job", job_id=other["job_id"]))["status"] == "scheduled"


async def test_a_technician_without_the_skill_or_inactive_is_refused(client: Client, add_technician: Callable[..., str]) -> None:
    plumber = add_technician("Sam Okafor", ["plumbing"])
    retired = add_technician("Old Hand", ["hvac"], active=False)
    job = await booked(client)
    assert "skill 'hvac'" in await fail(client, "dispatch_technician", job_id=job["job_id"], technician_id=plumber)
    assert "inactive" in await fail(client, "dispatch_technician", job_id=job["job_id"], technician_id=retired)
    assert "technician_id:" in await fail(client, "dispatch_technician", job_id=job["job_id"], technician_id="tech_nope")


async def test_a_business_job_type_maps_to_its_skill(client: Client, add_technician: Callable[..., str]) -> None:
    tech = add_technician("Dev Patel", ["hvac"])
    job = await booked(client, job_type="Furnace repair")
    assert job["skill"] == "hvac"
    assert (await call(client, "dispatch_technician", job_id=job["job_id"], technician_id=tech))["status"] == "dispatched"


async def test_each_status_change_is_recorded_and_final_states_stay_final(client: Client, add_technician: Callable[..., str]) -> None:
    job = await completed(client, add_technician("Maria Lopez", ["hvac"]))
    assert [h["status"] for h in job["history"]] == ["scheduled", "dispatched", "en_route", "arrived", "working", "completed"]
    message = await fail(client, "update_job_status", job_id=job["job_id"], status="working")
    assert "final" in message
    retried = await call(client, "update_job_status", job_id=job["job_id"], status="completed")
    assert len(retried["history"]) == 6


async def test_a_job_cannot_be_worked_before_anyone_is_dispatched(client: Client) -> None:
    job = await booked(client)
    message = await fail(client, "update_job_status", job_id=job["job_id"], status="en_route")
    assert "dispatched" in message  # lists what a scheduled job can become


async def test_free_slots_leave_out_a_booked_technician(client: Client, add_technician: Callable[..., str]) -> None:
    maria = add_technician("Maria Lopez", ["hvac"])
    dev = add_technician("Dev Patel", ["hvac"])
    await booked(client, technician_id=maria)
    slots = (await call(client, "find_available_slots", job_type="hvac", date_from=MONDAY.isoformat()))["slots"]
    by_start = {s["window_start"]: {t["technician_id"] for t in s["technicians"]} for s in slots}
    assert by_start[iso(MONDAY, 8)] == {dev}  # Maria is booked 09:00-11:00
    assert by_start[iso(MONDAY, 10)] == {dev}
    assert by_start[iso(MONDAY, 12)] == {maria, dev}


async def test_an_invoice_adds_up_and_a_retry_never_bills_twice(
    client: Client, add_technician: Callable[..., str], settings: Settings
) -> None:
    job = await completed(client, add_technician("Maria Lopez", ["hvac"]))
    invoice = await call(client, "create_invoice", job_id=job["job_id"], line_items=LINES, tax_rate="0.0825",
                         discount="20", idempotency_key="inv-1")
    assert (invoice["subtotal"], invoice["discount"], invoice["tax"], invoice["total"]) == ("254.00", "20.00", "19.31", "253.31")
    assert await call(client, "create_invoice", job_id=job["job_id"], line_items=LINES, tax_rate="0.0825",
                      discount="20", idempotency_key="inv-1") == invoice
    other_key = await call(client, "create_invoice", job_id=job["job_id"], line_items=LINES, idempotency_key="inv-2")
    assert other_key["already_invoiced"] is True and other_key["invoice_id"] == invoice["invoice_id"]
    assert count(settings, "invoices") == 1
    profile = await call(client, "get_customer", customer_id=job["customer_id"])
    assert profile["open_balance"] == "253.31"


async def test_only_a_completed_job_is_invoiced(client: Client, settings: Settings) -> None:
    job = await booked(client)
    message = await fail(client, "create_invoice", job_id=job["job_id"], line_items=LINES, idempotency_key="inv")
    assert "completed" in message and count(settings, "invoices") == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [({"tax_rate": "8.25"}, "tax_rate"), ({"discount": "-1"}, "discount"),
     ({"line_items": [{"description": "x", "quantity": "-2", "unit_price": "1"}]}, "quantity")],
)
async def test_bad_invoice_arguments_are_tool_errors(
    client: Client, add_technician: Callable[..., str], settings: Settings, change: dict[str, Any], field: str
) -> None:
    job = await completed(client, add_technician("Maria Lopez", ["hvac"]))
    args = {"job_id": job["job_id"], "line_items": LINES, "idempotency_key": "bad", **change}
    assert field in await fail(client, "create_invoice", **args)
    assert count(settings, "invoices") == 0


async def test_writes_are_audited_without_personal_data(client: Client, settings: Settings) -> None:

    await booked(client)
    await booked(client)
    conn = stores.connect(settings.db_path)
    rows = conn.execute("SELECT tool, arguments, result_id, replayed FROM audit_log ORDER BY id").fetchall()
    conn.close()
    assert [(r[0], r[3]) for r in rows] == [("create_job", 0), ("create_job", 1)]
    assert "Maria" not in rows[0][1] and "0188" not in rows[0][1] and "Maple" not in rows[0][1]
