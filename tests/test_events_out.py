"""Changes out: the outbox written with each change, read by cursor through list_changes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from mcp import Client

from fsm_mcp.events import outbox
from fsm_mcp.settings import Settings
from fsm_mcp.store import open_store
from tests.conftest import MONDAY_9, NEW_CALLER, call, count, fail

pytestmark = pytest.mark.anyio

LINES = [{"description": "Diagnostic", "quantity": "1", "unit_price": "89.00", "kind": "service"}]


async def booked(client: Client, key: str = "job", **overrides: Any) -> dict[str, Any]:
    args = {"customer": NEW_CALLER, "job_type": "hvac", "summary": "no heat", "idempotency_key": key, **MONDAY_9}
    return await call(client, "create_job", **{**args, **overrides})


async def everything(client: Client) -> list[dict[str, Any]]:
    page = await call(client, "list_changes", limit=500)
    return list(page["events"])


async def test_each_change_is_one_event_in_order_with_ids_and_statuses_only(
    client: Client, add_technician: Callable[..., str]
) -> None:
    tech = add_technician("Sam Tech", ["hvac"])
    job = await booked(client)
    await booked(client)  # the same key replays: no second event
    await call(client, "dispatch_technician", job_id=job["job_id"], technician_id=tech, idempotency_key="d")
    for status in ("en_route", "arrived", "working", "working", "completed"):
        await call(client, "update_job_status", job_id=job["job_id"], status=status)
    await call(client, "create_invoice", job_id=job["job_id"], line_items=LINES, idempotency_key="inv")
    await call(client, "create_invoice", job_id=job["job_id"], line_items=LINES, idempotency_key="inv2")  # already

    events = await everything(client)
    assert [e["type"] for e in events] == [
        "customer.created", "job.created", "technician.assigned", "job.status_changed", "job.status_changed",
        "job.status_changed", "job.status_changed", "job.completed", "invoice.created"]
    assert [e["data"].get("status") for e in events[3:8]] == ["dispatched", "en_route", "arrived", "working",
                                                              "completed"]
    assert events[7]["data"]["previous_status"] == "working"
    assert events[2]["data"]["technician_id"] == tech
    assert events[-1]["subject_type"] == "invoice" and events[-1]["data"]["job_id"] == job["job_id"]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    text = str(events)
    for personal in ("Maria", "Garcia", "555", "Maple", "no heat"):
        assert personal not in text


async def test_a_write_that_fails_after_its_event_leaves_neither_the_change_nor_the_event(
    client: Client, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fsm_mcp.store import idempotency

    def broken(*_: object) -> None:
        raise RuntimeError("the audit log is full")

    monkeypatch.setattr(idempotency.audit, "record", broken)  # fails after the job and its events are written
    result = await client.call_tool("create_job", {"customer": NEW_CALLER, "job_type": "hvac", "summary": "no heat",
                                                   "idempotency_key": "k", **MONDAY_9})
    assert result.is_error
    assert count(settings, "jobs") == 0
    assert count(settings, "events") == 0


async def test_the_cursor_pages_through_the_feed_and_an_unknown_one_is_refused_by_name(client: Client) -> None:
    for n in range(5):
        await booked(client, key=f"k{n}", customer={**NEW_CALLER, "name": f"Maria Garcia{n}",
                                                    "phone": f"(312) 555-010{n}"}, new_customer=True)
    seen, cursor = [], None
    while True:
        page = await call(client, "list_changes", **({"since": cursor} if cursor else {}), limit=3)
        seen += page["events"]
        cursor = page["cursor"]
        if not page["more"]:
            break
    assert len(seen) == 10 and len({e["id"] for e in seen}) == 10
    again = await call(client, "list_changes", since=cursor)
    assert again["events"] == [] and again["cursor"] == cursor and again["more"] is False
    message = await fail(client, "list_changes", since="evt_nope")
    assert "since" in message and "leave since out" in message


async def test_a_cursor_older_than_the_retention_is_refused_as_expired(settings: Settings) -> None:
    db = open_store(settings.db_path)
    try:
        first = await outbox.record(db, "default", "job.created", "job", "job_1", {"status": "scheduled"})
        await outbox.record(db, "default", "job.completed", "job", "job_1", {"status": "completed"})
        db.clock.advance(timedelta(days=31))
        kept = await outbox.record(db, "default", "job.created", "job", "job_2", {"status": "scheduled"})
        assert [e.subject_id for e in (await outbox.read(db, "default", first)).events] == ["job_1", "job_2"]
        assert await outbox.prune(db, "default", timedelta(days=30)) == 2
        assert [e.id for e in (await outbox.read(db, "default", None)).events] == [kept]
        with pytest.raises(Exception, match="since: this cursor is older than the 30 days"):
            await outbox.read(db, "default", first, retention=timedelta(days=30))
    finally:
        db.close()


async def test_a_job_and_the_feed_are_resources_and_a_watched_job_sends_resource_updated(
    client: Client, add_technician: Callable[..., str]
) -> None:
    import json

    import anyio
    from mcp.server.subscriptions import ResourceUpdated

    tech = add_technician("Sam Tech", ["hvac"])
    job = await booked(client)
    uri = f"fsm://jobs/{job['job_id']}"
    read = await client.read_resource(uri)
    assert json.loads(read.contents[0].text)["status"] == "scheduled"  # type: ignore[union-attr]
    feed = json.loads((await client.read_resource("fsm://businesses/default/changes")).contents[0].text)  # type: ignore[union-attr]
    assert [e["type"] for e in feed["events"]] == ["customer.created", "job.created"]

    async with client.listen(resource_subscriptions=[uri]) as watched:
        await call(client, "dispatch_technician", job_id=job["job_id"], technician_id=tech, idempotency_key="d")
        with anyio.fail_after(5):
            event = await watched.__anext__()
    assert event == ResourceUpdated(uri=uri)
    read = await client.read_resource(uri)
    assert json.loads(read.contents[0].text)["status"] == "dispatched"  # type: ignore[union-attr]


async def test_over_servicetitan_each_successful_write_is_recorded_as_an_event_after_the_vendor_answers(
    rig: Any,
) -> None:
    from tests.when import MONDAY, at

    async with rig.client() as client:
        booked = await call(client, "create_job", job_type="Furnace repair", summary="No heat", idempotency_key="k1",
                            customer=NEW_CALLER, address="5 Elm St, Springfield, IL 62704",
                            window_start=at(MONDAY, 9), window_end=at(MONDAY, 11))
        await call(client, "dispatch_technician", job_id=booked["job_id"], technician_id=rig.tech,
                   idempotency_key="d1")
        await call(client, "update_job_status", job_id=booked["job_id"], status="en_route")
        events = await everything(client)
    assert [e["type"] for e in events] == ["customer.created", "job.created", "technician.assigned",
                                           "job.status_changed", "job.status_changed"]
    assert {e["subject_id"] for e in events[1:]} == {booked["job_id"]}
