"""The events of fsm-mcp's own writes over a vendor: committed with the call's idempotency record, so a call cut
off after the vendor answered loses none and its retry doubles none; and a vendor poll that sees a job while
fsm-mcp is still booking it does not report it created a second time."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import anyio
import httpx2 as httpx
import pytest
from mcp import Client

from fsm_mcp.clock import Clock
from fsm_mcp.events import outbox
from fsm_mcp.server import build_server
from fsm_mcp.store import idempotency, open_store
from fsm_mcp.store.idempotency import LEASE
from tests.st_rig import BUSINESS, NEW_CALLER, WINDOW, Rig, call

pytestmark = pytest.mark.anyio

BOOKING = {"job_type": "Furnace repair", "summary": "No heat", "customer": NEW_CALLER,
           "address": "5 Elm St, Springfield, IL 62704", **WINDOW}


class Crash(Exception):
    """The process dies here: its transaction is never committed, and nothing lets the key's lease go (the record
    is the last thing a call does, outside the part that gives the lease back on a failure)."""


async def feed(rig: Rig) -> list[outbox.Event]:
    db = open_store(rig.settings.db_path)
    try:
        return (await outbox.read(db, BUSINESS.tenant_id, None, limit=500)).events
    finally:
        db.close()


def kinds(events: list[outbox.Event]) -> Counter[tuple[str, str]]:
    return Counter((e.type, e.subject_id) for e in events)


def crash_at_the_record(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The first call's key record dies inside its transaction: the vendor has answered, nothing of ours is kept."""
    crashed: list[str] = []

    def dying(name: str, tool_at: int) -> None:
        real = getattr(idempotency, name)

        def finish(*args: Any) -> None:
            real(*args)  # every write of the transaction, then the end before its commit
            if not crashed:
                crashed.append(args[tool_at])
                raise Crash

        monkeypatch.setattr(idempotency, name, finish)

    dying("_finish_held", 3)  # (conn, now, held, tool, ...): a call with a key
    dying("_finish", 4)  # (conn, now, tenant, key, tool, ...): without one (update_job_status)
    return crashed


async def cut_off(client: Client, tool: str, arguments: dict[str, Any]) -> None:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.content


async def test_a_booking_cut_off_after_the_vendor_answered_is_reported_once_by_its_retry(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashed = crash_at_the_record(monkeypatch)
    clock = Clock()
    async with Client(build_server(rig.settings, rig.transport, clock=clock)) as first:
        await cut_off(first, "create_job", {"idempotency_key": "k1", **BOOKING})
    assert crashed == ["create_job"] and len(rig.fake.jobs) == 1  # the job is at the vendor
    assert await feed(rig) == []  # and nothing of the call was kept: its events went with its record
    clock.advance(LEASE + timedelta(seconds=1))  # the dead holder's lease lapses
    async with Client(build_server(rig.settings, rig.transport, clock=clock)) as second:
        booked = await call(second, "create_job", idempotency_key="k1", **BOOKING)
        again = await call(second, "create_job", idempotency_key="k1", **BOOKING)
    assert again == booked and len(rig.fake.jobs) == 1
    got = kinds(await feed(rig))
    assert got == {("customer.created", booked["customer_id"]): 1, ("job.created", booked["job_id"]): 1}


async def test_a_completion_and_an_invoice_cut_off_after_the_vendor_answered_are_reported_once(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    lines = [{"description": "Diagnostic", "quantity": "1", "unit_price": "89.00", "kind": "service"}]
    async with Client(build_server(rig.settings, rig.transport, clock=clock)) as client:
        job = await call(client, "create_job", idempotency_key="k1", **BOOKING)
        await call(client, "dispatch_technician", job_id=job["job_id"], technician_id=rig.tech, idempotency_key="d1")
        for status in ("en_route", "arrived", "working"):
            await call(client, "update_job_status", job_id=job["job_id"], status=status)
    for tool, arguments in (("update_job_status", {"job_id": job["job_id"], "status": "completed"}),
                            ("create_invoice", {"job_id": job["job_id"], "line_items": lines,
                                                "idempotency_key": "i1"})):
        crashed = crash_at_the_record(monkeypatch)
        async with Client(build_server(rig.settings, rig.transport, clock=clock)) as first:
            await cut_off(first, tool, arguments)
        assert crashed == [tool], tool
        clock.advance(LEASE + timedelta(seconds=1))
        async with Client(build_server(rig.settings, rig.transport, clock=clock)) as second:
            await call(second, tool, **arguments)
            await call(second, tool, **arguments)
    got = kinds(await feed(rig))
    assert got[("job.completed", job["job_id"])] == 1
    assert [t for (t, _), n in got.items() for _ in range(n) if t == "invoice.created"] == ["invoice.created"]


class PollsAfterTheJobIsMade(httpx.AsyncBaseTransport):
    """The network edge: once the vendor has answered the booking's POST of the job, and before the booking sees
    that answer, the vendor's job-change poll runs (another replica's, or the background loop's)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, rig: Rig) -> None:
        self.inner, self.rig = inner, rig
        self.polled: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path.endswith("/jobs") and not self.polled:
            await response.aread()
            db = open_store(self.rig.settings.db_path)
            backend = self.rig.backend(db)
            try:
                assert backend.changes is not None
                job_id = str(response.json()["id"])
                self.polled.append(await backend.changes.hint(job_id))
            finally:
                await backend.aclose()
                db.close()
        return response


async def test_a_job_the_poll_sees_while_it_is_being_booked_is_created_once(rig: Rig) -> None:
    edge = PollsAfterTheJobIsMade(rig.transport, rig)
    async with Client(build_server(rig.settings, edge)) as client:
        with anyio.fail_after(30):
            booked = await call(client, "create_job", idempotency_key="k1", **BOOKING)
            await call(client, "dispatch_technician", job_id=booked["job_id"], technician_id=rig.tech,
                       idempotency_key="d1")
    assert edge.polled and edge.polled[0] >= 1  # the poll saw the job first and reported it
    got = kinds(await feed(rig))
    assert got[("job.created", booked["job_id"])] == 1
    assert got[("technician.assigned", booked["job_id"])] == 1
