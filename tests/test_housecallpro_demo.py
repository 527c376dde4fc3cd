"""The demo's call (`fsm-mcp demo`), played over Housecall Pro against its fake: the script that
runs over the embedded store holds here too, with the one part Housecall Pro's API leaves to
its app (finishing the job) done there, as the technician would, while the agent records the work."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from mcp import Client

from fsm_mcp import demo
from fsm_mcp.clock import Clock
from fsm_mcp.connectors import open_backend
from fsm_mcp.server import build_server
from fsm_mcp.settings import Settings
from fsm_mcp.store import open_store
from tests.fakes.housecallpro import FakeHousecallPro, connector_settings
from tests.st_rig import call
from tests.test_demo_over_vendors import BUSINESS, TECHS
from tests.when import MONDAY, monday, window

pytestmark = pytest.mark.anyio
WORKING = re.compile(r"^/jobs/(?P<job>[^/]+)/notes$")


def technician_app(fake: FakeHousecallPro) -> httpx.AsyncBaseTransport:
    """The fake over a transport that plays the technician's app: when the agent records a job as working,
    the technician finishes it in the app (the API cannot)."""
    inner = httpx.ASGITransport(fake.app)

    async def handler(request: httpx.Request) -> httpx.Response:
        answer = await inner.handle_async_request(request)
        if request.method == "POST" and (m := WORKING.match(request.url.path)) and b"[fsm-mcp] working" in request.content:
            fake.complete(m["job"])
        return answer

    return httpx.MockTransport(handler)


def demo_business(db: Path) -> tuple[FakeHousecallPro, Settings]:
    fake = FakeHousecallPro()
    for name in TECHS:
        first, last = name.split()
        fake.add_employee(first, last)
    fake.add_job_type("hvac")
    fake.add_customer("William Jenkins", "123 Oak Street", "Springfield", "62704", mobile="+12175550143",
                      email="wjenkins@example.com")
    fake.add_customer("Linda Park", "88 Elm Ave Apt 2", "Springfield", "62702", mobile="217-555-0177")
    return fake, Settings(db_path=db, business=BUSINESS, backend="housecallpro",
                          housecallpro=connector_settings("http://vendor.test", skills=TECHS))


async def past_furnace_job(client: Client, day: Any) -> None:
    william = (await call(client, "lookup_customer", phone="2175550143"))["matches"][0]["customer_id"]
    tech = (await call(client, "list_technicians", skill="hvac"))["technicians"][0]["technician_id"]
    job = await call(client, "create_job", customer_id=william, job_type="hvac", idempotency_key="past",
                     summary="Annual furnace tune-up; replaced the flame sensor", **window(day, 15))
    await call(client, "dispatch_technician", job_id=job["job_id"], technician_id=tech, idempotency_key="past-d")
    for status in ("en_route", "arrived", "working"):
        await call(client, "update_job_status", job_id=job["job_id"], status=status)


async def test_the_demo_call_runs_over_housecall_pro(tmp_path: Path) -> None:
    fake, settings = demo_business(tmp_path / "demo.db")
    transport = technician_app(fake)
    db = open_store(settings.db_path)
    async with open_backend(settings, db, transport, background=False) as backend:  # as `fsm-mcp sync` does
        await backend.sync.run()  # type: ignore[attr-defined]
    db.close()
    then = Clock(offset=-timedelta(weeks=8))  # the business's clock when William's tune-up was booked
    async with Client(build_server(settings, transport, clock=then)) as client:
        await past_furnace_job(client, monday(then, weeks_ahead=1))
    async with Client(build_server(settings, transport)) as client:
        await demo.the_call(client, MONDAY)
    company = fake.company
    garcia = [c for c in company.customers.values() if c["last_name"] == "Garcia"]
    assert len(garcia) == 1  # created once, whatever the retries
    jobs = [j for j in company.jobs.values() if j["customer_id"] == garcia[0]["id"]]
    assert len(jobs) == 1 and jobs[0]["work_status"].startswith("complete")
    assert [i["name"] for i in company.line_items[jobs[0]["id"]]] == ["Diagnostic visit", "Blower motor bearing", "Labor"]
