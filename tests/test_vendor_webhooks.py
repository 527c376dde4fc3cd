"""Webhooks in from the field-service vendors, over real loopback HTTP: fsm-mcp's HTTP app (authenticated,
yet needing no API key on /webhooks) in front of the fake vendors, each on its own port. A webhook is a hint:
the job is read from the vendor before anything is recorded."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import pytest

from fsm_mcp.access.config import AccessSettings
from fsm_mcp.access.http import http_app
from fsm_mcp.access.tokens import Verifier
from fsm_mcp.events import outbox
from fsm_mcp.events.vendor_hooks import signature
from fsm_mcp.server import build_server
from fsm_mcp.settings import Settings
from fsm_mcp.store import open_store
from tests import stores
from tests.fakes.fieldpulse import FakeFieldPulse, parse_time
from tests.fakes.fieldpulse import connector_settings as fp_connector
from tests.fakes.fieldpulse import stamp as fp_stamp
from tests.fakes.serve import serving
from tests.fakes.servicetitan import FakeServiceTitan
from tests.st_rig import BUSINESS, st_settings
from tests.vendor_rig import fp_complete, fp_job, st_complete, st_job

KEY = "k" * 40
SECRET = "s3cret-path-token-0123456789"
TENANT = BUSINESS.tenant_id


@contextmanager
def app_over(settings: Settings) -> Iterator[str]:
    """fsm-mcp's HTTP app, with API keys required on /mcp, served on a loopback port."""
    server = build_server(settings)
    db = open_store(settings.db_path)
    try:
        with serving(http_app(server, AccessSettings(), Verifier(db, [TENANT], AccessSettings()))) as url:
            yield url
    finally:
        db.close()


def types_of(settings: Settings, job_id: str) -> list[str]:
    db = open_store(settings.db_path)

    async def read() -> list[str]:
        got = await outbox.read(db, TENANT, None, limit=500)
        return [e.type for e in got.events if e.subject_id == job_id]

    try:
        return anyio.run(read)
    finally:
        db.close()


@pytest.fixture
def st(tmp_path: Path, store_kind: str, request: pytest.FixtureRequest) -> Iterator[tuple[FakeServiceTitan, Settings, str]]:
    fake = FakeServiceTitan()
    tech = str(fake.add_technician("Dana Reyes", "HVAC; plumbing"))
    fake.add_customer("William Carter", "12 Oak St", "Springfield", "62701", phones=["(217) 555-0143"])
    extra = getattr(request, "param", {})
    with serving(fake.app) as vendor:
        settings = Settings(db_path=stores.target(store_kind, tmp_path, "st.db"), business=BUSINESS,
                            backend="servicetitan",
                            servicetitan=st_settings(api_url=vendor, auth_url=vendor, webhook_key=KEY, **extra))
        yield fake, settings, tech


@pytest.mark.parametrize(("st", "header", "encoding"), [
    ({}, "X-ServiceTitan-Signature", "base64"),
    ({"webhook_signature_header": "ST-Signature", "webhook_signature_encoding": "hex"}, "ST-Signature", "hex"),
], indirect=["st"])
def test_a_signed_servicetitan_webhook_is_read_back_and_a_bad_signature_refused(st: Any, header: str, encoding: str
                                                                               ) -> None:
    fake, settings, tech = st
    job_id = st_job(fake, tech)
    st_complete(fake, job_id)
    body = json.dumps({"eventType": "JobCompleted", "data": {"jobId": int(job_id)}}).encode()
    with app_over(settings) as app:
        url = f"{app}/webhooks/servicetitan/{TENANT}"
        wrong = httpx.post(url, content=body, headers={header: signature(body, KEY[:-1] + "x", encoding)})
        unsigned = httpx.post(url, content=body)
        assert (wrong.status_code, unsigned.status_code) == (401, 401)
        assert types_of(settings, job_id) == []
        for _ in range(3):  # ServiceTitan retries; each is the same job read again
            assert httpx.post(url, content=body, headers={header: signature(body, KEY, encoding)}).status_code == 200
    assert types_of(settings, job_id) == ["job.created", "technician.assigned", "job.completed"]


@pytest.mark.parametrize("st", [{"sync_interval": 60}], indirect=True)
def test_a_delivery_lost_while_others_arrive_is_caught_up_by_a_quick_poll_long_before_the_next_full_one(
        st: Any) -> None:
    fake, settings, tech = st
    with app_over(settings) as app:
        time.sleep(1.0)  # the first full poll is done: the next is a minute away
        heard, lost = st_job(fake, tech), st_job(fake, tech)
        st_complete(fake, heard)
        st_complete(fake, lost)  # its delivery never comes
        body = json.dumps({"eventType": "JobCompleted", "data": {"jobId": int(heard)}}).encode()
        headers = {"X-ServiceTitan-Signature": signature(body, KEY, "base64")}
        assert httpx.post(f"{app}/webhooks/servicetitan/{TENANT}", content=body, headers=headers).status_code == 200
        deadline = time.monotonic() + 15
        while "job.completed" not in types_of(settings, lost) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "job.completed" in types_of(settings, lost)
    assert types_of(settings, heard)[-1] == "job.completed"


def test_a_webhook_needs_no_api_key_and_an_unknown_business_or_vendor_is_not_found(st: Any) -> None:
    _, settings, _ = st
    body = b"{}"
    with app_over(settings) as app:
        assert httpx.post(f"{app}/mcp", content=body).status_code == 401  # the MCP endpoint still wants a key
        signed = {"X-ServiceTitan-Signature": signature(body, KEY, "base64")}
        assert httpx.post(f"{app}/webhooks/servicetitan/{TENANT}", content=body, headers=signed).status_code == 200
        assert httpx.post(f"{app}/webhooks/servicetitan/elsewhere", content=body, headers=signed).status_code == 404
        assert httpx.post(f"{app}/webhooks/fieldpulse/{TENANT}/{SECRET}", content=body).status_code == 404


@pytest.fixture
def fp(tmp_path: Path, store_kind: str) -> Iterator[tuple[FakeFieldPulse, Settings, str]]:
    fake = FakeFieldPulse()
    tech = str(fake.add_technician("Dana Reyes"))
    fake.add_customer("William Carter", "12 Oak St", "Springfield", "62701", phones=("(217) 555-0143",))
    with serving(fake.app) as vendor:
        connector = fp_connector(vendor, webhook_secret=SECRET)
        settings = Settings(db_path=stores.target(store_kind, tmp_path, "fp.db"), business=BUSINESS,
                            backend="fieldpulse", fieldpulse=connector)
        yield fake, settings, tech


def test_a_fieldpulse_webhook_is_a_hint_the_job_is_read_again_before_anything_is_recorded(fp: Any) -> None:
    fake, settings, tech = fp
    job_id = fp_job(fake, tech)
    # The delivery claims the job completed; FieldPulse says it is still only dispatched: nothing is completed.
    claim = {"trigger": "Job Custom Status Update", "message": "UPDATE ON JOBS FOR status_id",
             "data": {"old_value": 1, "new_value": 4, "object": {"id": int(job_id)}}, "company": "FieldPulse_Test_1"}
    body = json.dumps(claim).encode()
    with app_over(settings) as app:
        assert httpx.post(f"{app}/webhooks/fieldpulse/{TENANT}/wrong-secret-0123456789", content=body).status_code == 401
        assert httpx.post(f"{app}/webhooks/fieldpulse/{TENANT}", content=body).status_code == 404  # FieldPulse signs nothing
        assert httpx.post(f"{app}/webhooks/fieldpulse/{TENANT}/{SECRET}", content=body).status_code == 200
        assert "job.completed" not in types_of(settings, job_id)
        fp_complete(fake, job_id)
        assert httpx.post(f"{app}/webhooks/fieldpulse/{TENANT}/{SECRET}", content=body).status_code == 200
        assert httpx.post(f"{app}/webhooks/fieldpulse/{TENANT}/{SECRET}", content=body).status_code == 200
    assert types_of(settings, job_id) == ["job.created", "technician.assigned", "job.completed"]


def test_the_copies_of_a_fieldpulse_delivery_after_a_read_that_showed_its_change_cost_no_read(fp: Any) -> None:
    fake, settings, tech = fp
    job_id = fp_job(fake, tech)
    hook = f"/webhooks/fieldpulse/{TENANT}/{SECRET}"

    def status(old: int, new: int) -> bytes:
        return json.dumps({"trigger": "Job Custom Status Update", "message": "UPDATE ON JOBS FOR status_id",
                           "data": {"old_value": old, "new_value": new, "object": {"id": int(job_id)}}}).encode()

    def reads() -> int:
        return sum(1 for x in fake.door.log if x.method == "GET" and x.path == f"/jobs/{job_id}")

    async def copies(app: str, body: bytes, n: int) -> list[int]:
        async with httpx.AsyncClient(base_url=app) as http:
            answers: list[int] = []

            async def one() -> None:
                answers.append((await http.post(hook, content=body)).status_code)

            async with anyio.create_task_group() as tg:
                for _ in range(n):
                    tg.start_soon(one)
        return answers

    with app_over(settings) as app:
        fp_complete(fake, job_id)
        assert anyio.run(copies, app, status(1, 4), 3) == [200, 200, 200]  # at once: one read serves them
        assert reads() == 1
        assert anyio.run(copies, app, status(1, 4), 2) == [200, 200]  # later: the last read showed it already
        assert reads() == 1
        fake.jobs[int(job_id)].update(status=5, updated_at=fp_stamp())  # canceled after all: announced next, and read
        assert anyio.run(copies, app, status(4, 5), 1) == [200]
        assert reads() == 2
    assert types_of(settings, job_id) == ["job.created", "technician.assigned", "job.completed", "job.cancelled"]


def test_a_fieldpulse_delivery_carrying_a_version_older_than_the_one_applied_costs_no_read(fp: Any) -> None:
    fake, settings, tech = fp
    job_id = fp_job(fake, tech)
    created = fake.jobs[int(job_id)]["updated_at"]
    hook = f"/webhooks/fieldpulse/{TENANT}/{SECRET}"

    def creation(updated_at: str) -> bytes:
        return json.dumps({"trigger": "Job Created", "message": "CREATE ON JOBS",
                           "data": {"id": int(job_id), "status": 1, "updated_at": updated_at}}).encode()

    def reads() -> int:
        return sum(1 for x in fake.door.log if x.method == "GET" and x.path == f"/jobs/{job_id}")

    with app_over(settings) as app:
        assert httpx.post(f"{app}{hook}", content=creation(created)).status_code == 200
        assert reads() == 1
        later = fp_stamp(parse_time(created, "updated_at") + timedelta(minutes=5))
        fake.jobs[int(job_id)].update(status=4, updated_at=later)  # completed; its delivery is read
        assert httpx.post(f"{app}{hook}", content=creation(later)).status_code == 200
        assert reads() == 2
        # The creation's copy, late: the version it carries is older than the one applied.
        assert httpx.post(f"{app}{hook}", content=creation(created)).status_code == 200
        assert reads() == 2
        # Same version as applied: FieldPulse's times are to the second, so that is read.
        assert httpx.post(f"{app}{hook}", content=creation(later)).status_code == 200
        assert reads() == 3
    assert types_of(settings, job_id) == ["job.created", "technician.assigned", "job.completed"]
