"""The demo's call (`fsm-mcp demo`), played over each vendor connector against its fake: the
same script that runs over the embedded store must hold over ServiceTitan and FieldPulse."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from mcp import Client

from fsm_mcp import demo
from fsm_mcp.clock import Clock
from fsm_mcp.connectors import open_backend
from fsm_mcp.server import build_server
from fsm_mcp.settings import Business, Settings
from fsm_mcp.store import open_store
from tests.fakes import fieldpulse, servicetitan
from tests.st_rig import call
from tests.when import MONDAY, monday, window

pytestmark = pytest.mark.anyio
BUSINESS = Business(name=demo.DEMO_ENV["FSM_MCP_NAME"], timezone=demo.DEMO_ENV["FSM_MCP_TIMEZONE"])
TECHS = {"Maria Lopez": ["hvac", "plumbing"], "Dev Patel": ["hvac", "electrical"], "Sam Okafor": ["plumbing"]}


def demo_business(vendor: str, db: Path) -> tuple[Any, Settings]:
    """The demo's business at the vendor: its technicians and its returning customers."""
    if vendor == "servicetitan":
        st = servicetitan.FakeServiceTitan()
        for name, skills in TECHS.items():
            st.add_technician(name, "; ".join(skills))
        st.add_customer("William Jenkins", "123 Oak Street", "Springfield", "62704", phones=["+12175550143"],
                        emails=["wjenkins@example.com"])
        st.add_customer("Linda Park", "88 Elm Ave Apt 2", "Springfield", "62702", phones=["217-555-0177"])
        return st, Settings(db_path=db, business=BUSINESS, backend="servicetitan",
                            servicetitan=servicetitan.connector_settings("http://vendor.test"))
    fp = fieldpulse.FakeFieldPulse()
    for name in TECHS:
        fp.add_technician(name)
    fp.add_customer("William Jenkins", "123 Oak Street", "Springfield", "62704", phones=("+12175550143",),
                    emails=("wjenkins@example.com",))
    fp.add_customer("Linda Park", "88 Elm Ave Apt 2", "Springfield", "62702", phones=("217-555-0177",))
    return fp, Settings(db_path=db, business=BUSINESS, backend="fieldpulse",
                        fieldpulse=fieldpulse.connector_settings("http://vendor.test", skills=TECHS))


async def past_furnace_job(client: Client, day: date) -> None:
    """William's tune-up on `day`, recorded the way the business would have: booked, worked, completed."""
    william = (await call(client, "lookup_customer", phone="2175550143"))["matches"][0]["customer_id"]
    tech = (await call(client, "list_technicians", skill="hvac"))["technicians"][0]["technician_id"]
    job = await call(client, "create_job", customer_id=william, job_type="hvac", idempotency_key="past",
                     summary="Annual furnace tune-up; replaced the flame sensor",
                     **window(day, 15))
    await call(client, "dispatch_technician", job_id=job["job_id"], technician_id=tech, idempotency_key="past-d")
    for status in ("en_route", "arrived", "working"):
        await call(client, "update_job_status", job_id=job["job_id"], status=status)
    await call(client, "update_job_status", job_id=job["job_id"], status="completed", note="Flame sensor replaced")


@pytest.mark.parametrize("vendor", ["servicetitan", "fieldpulse"])
async def test_the_demo_call_runs_over_each_vendor(vendor: str, tmp_path: Path) -> None:
    fake, settings = demo_business(vendor, tmp_path / "demo.db")
    transport = httpx.ASGITransport(fake.app)
    db = open_store(settings.db_path)
    async with open_backend(settings, db, transport, background=False) as backend:  # as `fsm-mcp sync` does
        await backend.sync.run()  # type: ignore[attr-defined]
    db.close()
    then = Clock(offset=-timedelta(weeks=8))  # the business's clock when William's tune-up was booked
    async with Client(build_server(settings, transport, clock=then)) as client:
        await past_furnace_job(client, monday(then, weeks_ahead=1))
    async with Client(build_server(settings, transport)) as client:
        await demo.the_call(client, MONDAY)
    garcia = [c for c in fake.customers.values() if "Garcia" in (c.get("name") or c.get("display_name") or "")]
    assert len(garcia) == 1  # created once, whatever the retries
    jobs = [j for j in fake.jobs.values() if j.get("customerId", j.get("customer_id")) == garcia[0]["id"]]
    assert len(jobs) == 1
