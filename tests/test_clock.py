"""One clock: the whole server reads the time it is handed, so it works the same a year or three from now,
and the past is refused in the business's own words."""

from collections.abc import Callable
from datetime import timedelta

import pytest
from mcp import Client

from fsm_mcp.clock import Clock
from fsm_mcp.server import build_server
from fsm_mcp.settings import Settings
from tests.conftest import BUSINESS, NEW_CALLER, call, count, fail
from tests.when import monday, window

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("years", [1, 3])
async def test_the_whole_booking_lifecycle_runs_years_ahead(years: int, settings: Settings,
                                                            add_technician: Callable[..., str]) -> None:
    clock = Clock(offset=timedelta(days=365 * years))
    day = monday(clock)
    tech = add_technician("Maria Lopez", ["hvac"])
    async with Client(build_server(settings, clock=clock)) as client:
        slots = (await call(client, "find_available_slots", job_type="hvac", date_from=day.isoformat()))["slots"]
        assert slots and slots[0]["window_start"].startswith(day.isoformat())
        slot = slots[0]
        job = await call(client, "create_job", customer=NEW_CALLER, job_type="hvac", summary="AC grinding noise",
                         idempotency_key="k", window_start=slot["window_start"], window_end=slot["window_end"])
        await call(client, "dispatch_technician", job_id=job["job_id"], technician_id=tech, idempotency_key="d")
        for status in ("en_route", "arrived", "working", "completed"):
            moved = await call(client, "update_job_status", job_id=job["job_id"], status=status)
        assert [h["status"] for h in moved["history"]][-1] == "completed"
        assert all(h["at"].startswith(str(clock.today(BUSINESS.zone).year)) for h in moved["history"])
        invoice = await call(client, "create_invoice", job_id=job["job_id"], idempotency_key="i",
                             line_items=[{"description": "Labor", "kind": "labor", "quantity": "1", "unit_price": "95"}])
        assert invoice["total"] == "95.00"
        found = await call(client, "lookup_customer", phone=NEW_CALLER["phone"])
        assert found["customer"]["recent_jobs"][0]["job_id"] == job["job_id"]
        # what was next week for today's clock is long past for this one
        said = await fail(client, "create_job", customer=NEW_CALLER, job_type="hvac", summary="x", idempotency_key="old",
                          **window(monday(), 9))
        assert "window_start: that time has passed; it is now" in said and "America/Chicago" in said
    assert count(settings, "jobs") == 1


async def test_a_window_that_has_passed_writes_nothing(client: Client, settings: Settings) -> None:
    last_week = monday(weeks_ahead=-1)
    said = await fail(client, "create_job", customer=NEW_CALLER, job_type="hvac", summary="x", idempotency_key="k",
                      **window(last_week, 9))
    assert "that time has passed" in said and "find_available_slots" in said
    assert count(settings, "jobs") == 0 and count(settings, "customers") == 0


async def test_a_slot_search_beyond_the_booking_horizon_is_refused(client: Client) -> None:
    far = monday(weeks_ahead=6 * 52)
    said = await fail(client, "find_available_slots", job_type="hvac", date_from=far.isoformat())
    assert said.startswith("date_from") or "date_from:" in said
    assert "years ahead" in said
