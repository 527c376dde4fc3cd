"""Automations: a completed job invoiced once (its own lines, else the price list), a job with nothing to bill
flagged for a person, a follow-up due after the configured time; each step repeatable and resumable."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from fsm_mcp.businesses import open_businesses
from fsm_mcp.clock import Clock
from fsm_mcp.events import outbox
from fsm_mcp.events.automations import Automations, Policy
from fsm_mcp.server import build_server
from fsm_mcp.settings import Business, Settings, load_businesses
from fsm_mcp.store import automations as automation_sql
from fsm_mcp.store import open_store
from fsm_mcp.store.leases import Lease
from tests import stores
from tests.conftest import MONDAY_9, NEW_CALLER, call, count, fail

pytestmark = pytest.mark.anyio

LINES = [{"description": "Diagnostic", "quantity": "1", "unit_price": "89.00", "kind": "service"},
         {"description": "Igniter", "quantity": "2", "unit_price": "35.50", "kind": "material"}]
PRICE_LIST = {"Furnace repair": [{"description": "Furnace repair, flat rate", "quantity": "1", "unit_price": "240.00"}]}


def priced(settings: Settings, **business: Any) -> Settings:
    return settings.model_copy(update={"business": Business.model_validate({**settings.business.model_dump(), **business})})


@asynccontextmanager
async def served(settings: Settings, clock: Clock) -> AsyncIterator[tuple[Client, Automations]]:
    """A server to call, and the automations as another process sharing its store runs them."""
    db = open_store(settings.db_path, clock)
    try:
        async with Client(build_server(settings, clock=clock)) as client, \
                open_businesses({settings.business.tenant_id: settings}, db, background=False) as every:
            automations = Automations(every)
            await automations.start()
            yield client, automations
    finally:
        db.close()


async def completed(client: Client, tech: str, key: str, job_type: str = "hvac", **done: Any) -> str:
    job = await call(client, "create_job", customer=NEW_CALLER, job_type=job_type, summary="no heat",
                     idempotency_key=key, **MONDAY_9)
    await call(client, "dispatch_technician", job_id=job["job_id"], technician_id=tech, idempotency_key=f"d{key}")
    for status in ("en_route", "arrived", "working"):
        await call(client, "update_job_status", job_id=job["job_id"], status=status)
    await call(client, "update_job_status", job_id=job["job_id"], status="completed", **done)
    return str(job["job_id"])


def invoices(settings: Settings) -> list[Any]:
    conn = stores.connect(settings.db_path)
    try:
        return list(conn.execute("SELECT job_id, total FROM invoices ORDER BY job_id").fetchall())
    finally:
        conn.close()


def events(settings: Settings, type_: str) -> list[Any]:
    conn = stores.connect(settings.db_path)
    try:
        return list(conn.execute("SELECT subject_id, data FROM events WHERE type=? ORDER BY seq", (type_,)).fetchall())
    finally:
        conn.close()


def actors(settings: Settings, tool: str) -> list[str]:
    conn = stores.connect(settings.db_path)
    try:
        return [r[0] for r in conn.execute("SELECT actor FROM audit_log WHERE tool=?", (tool,)).fetchall()]
    finally:
        conn.close()


async def test_a_completion_with_its_lines_is_invoiced_once_with_their_total_by_the_system_actor(
    settings: Settings, add_technician: Callable[..., str]
) -> None:
    tech = add_technician("Sam Tech", ["hvac"])
    async with served(settings, Clock()) as (client, automations):
        job_id = await completed(client, tech, "a", lines=LINES)
        assert await automations.step() == 1
        assert await automations.step() == 0  # the cursor moved past it
    assert [(r[0], Decimal(r[1])) for r in invoices(settings)] == [(job_id, Decimal("160.00"))]
    assert actors(settings, "create_invoice") == ["system:automation"]
    assert len(events(settings, "invoice.created")) == 1


async def test_lines_are_refused_with_a_status_other_than_completed(
    settings: Settings, add_technician: Callable[..., str]
) -> None:
    async with served(settings, Clock()) as (client, _):
        job = await call(client, "create_job", customer=NEW_CALLER, job_type="hvac", summary="no heat",
                         idempotency_key="a", **MONDAY_9)
        said = await fail(client, "update_job_status", job_id=job["job_id"], status="working", lines=LINES)
    assert "lines" in said and "completed" in said


async def test_a_step_cut_off_midway_or_run_again_after_it_was_done_still_makes_one_invoice(
    settings: Settings, add_technician: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tech = add_technician("Sam Tech", ["hvac"])
    async with served(settings, Clock()) as (client, automations):
        job_id = await completed(client, tech, "a", lines=LINES)

        def killed(*_: Any) -> bool:
            raise RuntimeError("killed between the invoice and the cursor's move")

        monkeypatch.setattr(automation_sql, "settle", killed)
        with pytest.raises(RuntimeError):
            await automations.step()
        assert count(settings, "invoices") == 0  # one transaction on the local store: the kill undid the invoice too
        monkeypatch.undo()

        assert await automations.step() == 1  # the step again, from the start: the invoice's key replays
        business = automations.served.by_id[settings.business.tenant_id]
        await automations.completed(business, await completion(business.db))  # and once more, after it was done
        assert await automations.step() == 0
    assert [(r[0], Decimal(r[1])) for r in invoices(settings)] == [(job_id, Decimal("160.00"))]
    assert len(events(settings, "invoice.created")) == 1


async def completion(db: Any) -> Any:
    def first(conn: Any) -> Any:
        return conn.execute("SELECT * FROM events WHERE type='job.completed'").fetchone()

    return await db.aread(first)


async def test_a_completion_without_lines_is_billed_from_the_price_list_for_its_job_type(
    settings: Settings, add_technician: Callable[..., str]
) -> None:
    settings = priced(settings, price_list=PRICE_LIST)
    tech = add_technician("Sam Tech", ["hvac"])
    async with served(settings, Clock()) as (client, automations):
        job_id = await completed(client, tech, "a", job_type="furnace repair")
        await automations.step()
        await automations.step()
    assert [(r[0], Decimal(r[1])) for r in invoices(settings)] == [(job_id, Decimal("240.00"))]


async def test_a_job_with_nothing_to_bill_is_flagged_for_a_person_and_never_invoiced(
    settings: Settings, add_technician: Callable[..., str]
) -> None:
    settings = priced(settings, price_list=PRICE_LIST)
    tech = add_technician("Sam Tech", ["hvac"])
    async with served(settings, Clock()) as (client, automations):
        job_id = await completed(client, tech, "a")  # an hvac job: no lines, no price
        await automations.step()
        await automations.step()
    assert invoices(settings) == []
    flagged = events(settings, "invoice.needs_review")
    assert [r[0] for r in flagged] == [job_id] and '"nothing_to_bill"' in flagged[0][1]


async def test_a_job_invoiced_by_a_person_first_gets_no_second_invoice(
    settings: Settings, add_technician: Callable[..., str]
) -> None:
    tech = add_technician("Sam Tech", ["hvac"])
    async with served(settings, Clock()) as (client, automations):
        job_id = await completed(client, tech, "a", lines=LINES)
        await call(client, "create_invoice", job_id=job_id, line_items=LINES[:1], idempotency_key="inv")
        await automations.step()
    assert [(r[0], Decimal(r[1])) for r in invoices(settings)] == [(job_id, Decimal("89.00"))]


async def test_a_follow_up_is_due_the_configured_time_after_completion_and_recorded_once(
    settings: Settings, add_technician: Callable[..., str]
) -> None:
    settings = priced(settings, follow_up_days=2)
    tech = add_technician("Sam Tech", ["hvac"])
    clock = Clock()
    async with served(settings, clock) as (client, automations):
        job_id = await completed(client, tech, "a", lines=LINES)
        await automations.step()
        clock.advance(timedelta(days=2) - timedelta(minutes=1))
        await automations.step()
        assert events(settings, "follow_up.due") == []
        clock.advance(timedelta(minutes=2))
        await automations.step()
        await automations.step()
    assert [r[0] for r in events(settings, "follow_up.due")] == [job_id]


async def test_no_follow_up_when_it_is_set_to_zero(settings: Settings, add_technician: Callable[..., str]) -> None:
    settings = priced(settings, follow_up_days=0)
    tech = add_technician("Sam Tech", ["hvac"])
    clock = Clock()
    async with served(settings, clock) as (client, automations):
        await completed(client, tech, "a", lines=LINES)
        await automations.step()
        clock.advance(timedelta(days=400))
        await automations.step()
    assert events(settings, "follow_up.due") == []


async def test_serve_runs_the_automations_and_the_invoice_follows_the_completion(
    settings: Settings, add_technician: Callable[..., str]
) -> None:
    tech = add_technician("Sam Tech", ["hvac"])
    async with Client(build_server(settings, automate=True)) as client:
        job_id = await completed(client, tech, "a", lines=LINES)
        with anyio.fail_after(10):
            while not invoices(settings):
                await anyio.sleep(0.05)
    assert [r[0] for r in invoices(settings)] == [job_id]


async def test_the_review_event_reaches_list_changes(settings: Settings, add_technician: Callable[..., str]) -> None:
    tech = add_technician("Sam Tech", ["hvac"])
    async with served(settings, Clock()) as (client, automations):
        await completed(client, tech, "a")
        await automations.step()
        page = await call(client, "list_changes", limit=500)
    assert page["events"][-1]["type"] == "invoice.needs_review"


def test_the_readme_price_list_and_follow_up_are_read_from_the_file(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```toml\n(.*?)```", readme, re.S) if "[business.price_list]" in b]
    config = tmp_path / "fsm.toml"
    config.write_text(block)
    (one,) = load_businesses(tmp_path / "x.db", {"FSM_MCP_CONFIG": str(config)}).values()
    assert one.business.follow_up_days == 2 and one.business.tax_rate == Decimal("0.0825")
    assert [(x.description, x.unit_price) for x in one.business.priced("drain CLEANING")] == [
        ("Drain cleaning", Decimal("180.00")), ("Camera inspection", Decimal("95.00"))]
    assert one.business.priced("hvac") == []
    env = {"FSM_MCP_CONFIG": str(config), "FSM_MCP_FOLLOW_UP_DAYS": "0"}
    assert next(iter(load_businesses(tmp_path / "x.db", env).values())).business.follow_up_days == 0


async def test_over_fieldpulse_a_completion_is_invoiced_once_at_the_vendor(
    fp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, clock = fp.settings, Clock()
    db = open_store(settings.db_path, clock)
    try:
        async with Client(build_server(settings, fp.transport, clock=clock)) as client, \
                open_businesses({settings.business.tenant_id: settings}, db, fp.transport, background=False) as every:
            automations = Automations(every)
            await automations.start()
            job_id = await completed(client, fp.tech, "a", job_type="Furnace repair", lines=LINES)

            def killed(*_: Any) -> bool:
                raise RuntimeError("killed between the invoice and the cursor's move")

            monkeypatch.setattr(automation_sql, "settle", killed)
            with pytest.raises(RuntimeError):
                await automations.step()
            monkeypatch.undo()
            assert await automations.step() == 1
            assert await automations.step() == 0
    finally:
        db.close()
    made = [i for i in fp.fake.invoices.values() if str(i["job_id"]) == job_id]
    assert len(made) == 1 and Decimal(str(made[0]["total"])) == Decimal("160.00")


async def test_only_the_holder_of_the_lease_runs_them_and_another_takes_over_when_it_is_let_go(
    settings: Settings, add_technician: Callable[..., str]
) -> None:
    tech = add_technician("Sam Tech", ["hvac"])
    async with served(settings, Clock()) as (client, automations):
        db = automations.db
        other = Lease(db, "automations", timedelta(seconds=30), holder="another-replica")
        assert await other.take()
        mine = Lease(db, "automations", timedelta(seconds=30), holder="this-replica")
        waiting = Automations(automations.served, Policy(poll=0.02))
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiting.run, mine)
            job_id = await completed(client, tech, "a", lines=LINES)
            await anyio.sleep(0.2)  # ten passes: none may act while the other replica holds the lease
            assert invoices(settings) == []
            await other.release()
            with anyio.fail_after(10):
                while not invoices(settings):
                    await anyio.sleep(0.02)
            tg.cancel_scope.cancel()
    assert [r[0] for r in invoices(settings)] == [job_id]


@asynccontextmanager
async def completed_in_fieldpulse(fp: Any, settings: Settings, clock: Clock) -> AsyncIterator[tuple[Any, Automations]]:
    """A job booked through the tools, completed in FieldPulse's own app and seen by the poll (which records the
    completion as the services do); (the job, the automations) while the server serves."""
    db = open_store(settings.db_path, clock)
    try:
        async with Client(build_server(settings, fp.transport, clock=clock)) as client, \
                open_businesses({settings.business.tenant_id: settings}, db, fp.transport, background=False) as every:
            automations = Automations(every)
            await automations.start()
            job = await call(client, "create_job", customer=NEW_CALLER, job_type="Furnace repair", summary="no heat",
                             idempotency_key="a", **MONDAY_9)
            fp.fake.jobs[int(job["job_id"])]["status"] = 4
            await outbox.record(db, settings.business.tenant_id, "job.completed", "job", job["job_id"],
                                {"job_id": job["job_id"], "customer_id": job["customer_id"], "status": "completed"})
            yield job, automations
    finally:
        db.close()


async def test_a_completion_seen_at_fieldpulse_is_billed_there_from_the_price_list(fp: Any) -> None:
    settings = priced(fp.settings, price_list=PRICE_LIST)
    async with completed_in_fieldpulse(fp, settings, Clock()) as (job, automations):
        assert await automations.step() == 1
        await automations.step()
    made = [i for i in fp.fake.invoices.values() if str(i["job_id"]) == job["job_id"]]
    assert len(made) == 1 and Decimal(str(made[0]["total"])) == Decimal("240.00")
    assert actors(settings, "create_invoice") == ["system:automation"]


async def test_the_automation_invoices_at_the_business_tax_rate(
    settings: Settings, add_technician: Callable[..., str]
) -> None:
    settings = priced(settings, tax_rate="0.0825")
    tech = add_technician("Sam Tech", ["hvac"])
    async with served(settings, Clock()) as (client, automations):
        job_id = await completed(client, tech, "a", lines=LINES)
        await automations.step()
    assert [(r[0], Decimal(r[1])) for r in invoices(settings)] == [(job_id, Decimal("173.20"))]  # 160.00 + 8.25 %


async def test_over_a_vendor_completions_are_billed_side_by_side_and_one_that_failed_is_tried_again(
    fp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fsm_mcp.errors import VendorUnavailable
    from fsm_mcp.events import automations as module
    from tests.vendor_rig import fp_job

    settings, clock = priced(fp.settings, price_list=PRICE_LIST), Clock()
    tenant = settings.business.tenant_id
    db = open_store(settings.db_path, clock)
    try:
        async with open_businesses({tenant: settings}, db, fp.transport, background=False) as every:
            automations = Automations(every, Policy(parallel=4))
            await automations.start()
            jobs = [fp_job(fp.fake, fp.tech, hour=8 + 2 * n) for n in range(3)]
            for job_id in jobs:
                fp.fake.jobs[int(job_id)]["status"] = 4  # completed in FieldPulse's own app, seen by the poll
                await outbox.record(db, tenant, "job.completed", "job", job_id, {"job_id": job_id, "status": "completed"})
            real, refused = module.invoicing.invoice, []

            async def first_one_down(business: Any, actor: str, key: str, request: Any) -> Any:
                if request.job_id == jobs[0] and not refused:
                    refused.append(request.job_id)
                    raise VendorUnavailable("FieldPulse is down for a moment")
                return await real(business, actor, key, request)

            monkeypatch.setattr(module.invoicing, "invoice", first_one_down)
            before = await db.aread(automation_sql.cursor, tenant, "completion")
            assert await automations.step() == 2  # the two others, billed while the first waited on the vendor
            assert await db.aread(automation_sql.cursor, tenant, "completion") == before  # not past the failed one
            assert await automations.step() == 3  # the failed one billed; the others only passed
            assert await automations.step() == 0
    finally:
        db.close()
    for job_id in jobs:
        made = [i for i in fp.fake.invoices.values() if str(i["job_id"]) == job_id]
        assert len(made) == 1 and Decimal(str(made[0]["total"])) == Decimal("240.00"), job_id


async def test_a_completion_whose_event_names_the_job_type_is_priced_without_reading_the_job_back(
    fp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.vendor_rig import fp_job

    settings, clock = priced(fp.settings, price_list=PRICE_LIST), Clock()
    tenant = settings.business.tenant_id
    db = open_store(settings.db_path, clock)
    try:
        async with open_businesses({tenant: settings}, db, fp.transport, background=False) as every:
            automations = Automations(every)
            await automations.start()
            job_id = fp_job(fp.fake, fp.tech)
            fp.fake.jobs[int(job_id)]["status"] = 4
            await outbox.record(db, tenant, "job.completed", "job", job_id,
                                {"job_id": job_id, "job_type": "Furnace repair", "status": "completed"})
            backend = every.by_id[tenant].backend

            async def no_read(_: str) -> Any:
                raise AssertionError("the automation read the job back for its type")

            monkeypatch.setattr(backend, "get_job", no_read)
            assert await automations.step() == 1
    finally:
        db.close()
    made = [i for i in fp.fake.invoices.values() if str(i["job_id"]) == job_id]
    assert len(made) == 1 and Decimal(str(made[0]["total"])) == Decimal("240.00")


async def _billed_from_a_vendor_completion(rig: Any, book: Any, complete: Any) -> tuple[str, list[tuple[str, str]]]:
    """A job booked and completed in the vendor's app, the completion recorded by the poll, then one automation
    step: the job's id and the requests that step sent to the vendor."""
    settings, clock = priced(rig.settings, price_list=PRICE_LIST), Clock()
    tenant = settings.business.tenant_id
    db = open_store(settings.db_path, clock)
    try:
        async with open_businesses({tenant: settings}, db, rig.transport, background=False) as every:
            automations = Automations(every)
            await automations.start()
            poll = every.by_id[tenant].backend.changes
            job_id = book(rig.fake, rig.tech)
            await poll.run()
            complete(rig.fake, job_id)
            await poll.run()  # the completion, as the poll records it (its state: the status and the customer)
            assert [r[0] for r in events(settings, "job.completed")] == [job_id]
            before = len(rig.fake.door.log)
            assert await automations.step() == 1
            return job_id, [(x.method, x.path) for x in rig.fake.door.log[before:]]
    finally:
        db.close()


async def test_a_completion_seen_at_fieldpulse_is_invoiced_with_one_read_of_its_invoices_and_the_post(fp: Any) -> None:
    from tests.vendor_rig import fp_complete, fp_job

    job_id, asked = await _billed_from_a_vendor_completion(fp, fp_job, fp_complete)
    # What the completion already told (completed, whose customer) is not read again: neither the job nor its comments.
    assert asked == [("GET", "/invoices"), ("POST", "/invoices")]
    made = [i for i in fp.fake.invoices.values() if str(i["job_id"]) == job_id]
    assert len(made) == 1 and Decimal(str(made[0]["total"])) == Decimal("240.00")


async def test_a_completion_seen_at_servicetitan_is_invoiced_without_reading_the_job_again(rig: Any) -> None:
    from tests.vendor_rig import st_complete, st_job

    job_id, asked = await _billed_from_a_vendor_completion(rig, st_job, st_complete)
    # The completion the poll recorded is not read back (the job, its appointments, their technicians, its notes):
    # only the job's invoice is read and filled.
    assert not [path for _, path in asked if "/jpm/" in path or "/dispatch/" in path], asked
    [made] = [i for i in rig.fake.invoices.values() if str(i["job"]["id"]) == job_id]
    assert Decimal(made["total"]) == Decimal("240.00")


async def test_with_a_delay_a_completion_is_invoiced_only_once_the_delay_has_passed(
    settings: Settings, add_technician: Callable[..., str]
) -> None:
    settings = priced(settings, price_list=PRICE_LIST, invoice_delay_minutes=10)
    tech = add_technician("Sam Tech", ["hvac"])
    clock = Clock()
    async with served(settings, clock) as (client, automations):
        job_id = await completed(client, tech, "a", job_type="furnace repair")
        await automations.step()
        clock.advance(timedelta(minutes=9))
        await automations.step()
        assert invoices(settings) == []  # a technician may still invoice it in the vendor's app
        clock.advance(timedelta(minutes=2))
        await automations.step()
        await automations.step()
    assert [(r[0], Decimal(r[1])) for r in invoices(settings)] == [(job_id, Decimal("240.00"))]


async def test_with_a_delay_a_vendor_invoice_made_meanwhile_is_the_jobs_one(fp: Any) -> None:
    settings, clock = priced(fp.settings, price_list=PRICE_LIST, invoice_delay_minutes=10), Clock()
    async with completed_in_fieldpulse(fp, settings, clock) as (job, automations):
        assert await automations.step() == 0
        fp.fake.invoice_in_app(job["job_id"], ("Repair", "1", "310.00"))  # the technician, meanwhile
        clock.advance(timedelta(minutes=11))
        assert await automations.step() == 1
    made = [i for i in fp.fake.invoices.values() if str(i["job_id"]) == job["job_id"]]
    assert [Decimal(str(i["total"])) for i in made] == [Decimal("310.00")]
