"""The tools over Housecall Pro, against the fake built from its published spec: a caller's
whole booking, what the API cannot do told as such, retries that must not duplicate, lost
answers, the directory sync and its changes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.hcp_rig import HcpRig, hcp_rig  # noqa: F401  (the fixture `hcp`)
from tests.st_rig import NEW_CALLER, WINDOW, call
from tests.when import MONDAY

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
