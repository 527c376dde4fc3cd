"""One idempotency key books once however many processes share the store: the key's row is leased by the one
call working on it, the others wait and replay, and a call that takes over a dead holder's lease resumes from
the steps it recorded instead of booking again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from pydantic import BaseModel

from fsm_mcp.access.callers import SCOPES
from fsm_mcp.clock import Clock
from fsm_mcp.server import build_server
from fsm_mcp.store import open_store
from fsm_mcp.store.db import Database
from fsm_mcp.store.idempotency import LEASE, Attempt, IdempotentWriter, KeyBusy
from tests.fakes import serve
from tests.fakes.servicetitan import FakeServiceTitan, connector_env
from tests.http_rig import ENV, new_key, serving
from tests.st_rig import NEW_CALLER, WINDOW, Rig, call

pytestmark = pytest.mark.anyio

ADDRESS = "5 Elm St, Springfield, IL 62704"
BOOKING = {"job_type": "Furnace repair", "summary": "No heat", "customer": NEW_CALLER, "address": ADDRESS, **WINDOW}


class Stall(httpx.AsyncBaseTransport):
    """The network edge of one server: the first request matching (method, path end) stops there, after the vendor
    answered it, until `go` is set (a holder frozen or killed with its vendor write done); or, with `fail`, that
    request is refused at the edge (a holder cut off before it sent it)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, method: str, path_end: str, fail: bool = False) -> None:
        self.inner, self.method, self.path_end, self.fail = inner, method, path_end, fail
        self.reached, self.go = anyio.Event(), anyio.Event()
        self.sent: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        matches = request.method == self.method and request.url.path.endswith(self.path_end)
        hit = matches and not self.reached.is_set()
        if matches and self.fail:
            self.reached.set()
            return httpx.Response(400, json={"title": "cut off at the edge", "status": 400}, request=request)
        self.sent.append((request.method, request.url.path))
        response = await self.inner.handle_async_request(request)
        if hit:
            self.reached.set()
            await self.go.wait()
        return response


def servers(rig: Rig, transports: list[httpx.AsyncBaseTransport], clock: Clock | None = None) -> list[Client]:
    """One server per transport on the rig's one store, as separate processes would be: each opens the store
    itself and keeps its own idempotency guard."""
    return [Client(build_server(rig.settings, t, clock=clock)) for t in transports]


@asynccontextmanager
async def opened(clients: list[Client]) -> AsyncIterator[list[Client]]:
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(c) for c in clients]


def new_customers(rig: Rig) -> int:
    return len(rig.fake.customers) - 1  # the rig seeds William Carter


async def the_same_key_from_every_side(rig: Rig, key: str, sends: int = 21) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    async with opened(servers(rig, [rig.transport] * 3)) as clients:

        async def send(n: int) -> None:
            answers.append(await call(clients[n % 3], "create_job", idempotency_key=key, **BOOKING))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for n in range(sends):
                    tg.start_soon(send, n)
    return answers


async def test_21_concurrent_sends_of_one_key_over_three_servicetitan_servers_book_one_job(rig: Rig) -> None:
    answers = await the_same_key_from_every_side(rig, "burst-1")
    assert len(answers) == 21 and all(a == answers[0] for a in answers)
    assert answers[0]["customer_created"] and not answers[0]["already_booked"]
    assert len(rig.fake.jobs) == 1 and new_customers(rig) == 1


async def test_21_concurrent_sends_of_one_key_over_three_fieldpulse_servers_book_one_job(fp: Rig) -> None:
    answers = await the_same_key_from_every_side(fp, "burst-1")
    assert len(answers) == 21 and all(a == answers[0] for a in answers)
    assert len(fp.fake.jobs) == 1 and new_customers(fp) == 1


async def test_a_servicetitan_holder_frozen_after_the_vendor_made_the_customer_is_taken_over_without_a_second_one(
        rig: Rig) -> None:
    await a_frozen_holder_is_taken_over(rig)


async def test_a_fieldpulse_holder_frozen_after_the_vendor_made_the_customer_is_taken_over_without_a_second_one(
        fp: Rig) -> None:
    await a_frozen_holder_is_taken_over(fp)


async def a_frozen_holder_is_taken_over(rig: Rig) -> None:
    clock = Clock()
    frozen = Stall(rig.transport, "POST", "/customers")
    async with opened(servers(rig, [frozen, rig.transport], clock)) as (first, second):
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                outcome: dict[str, Any] = {}

                async def hold() -> None:
                    outcome["first"] = await first.call_tool("create_job", {"idempotency_key": "k1", **BOOKING})

                tg.start_soon(hold)
                await frozen.reached.wait()  # the customer exists at the vendor; its recovery point is not recorded
                clock.advance(LEASE + timedelta(seconds=1))  # the holder renewed nothing: its lease has lapsed
                taken_over = await call(second, "create_job", idempotency_key="k1", **BOOKING)
                frozen.go.set()  # the frozen holder wakes up, past its lease
        late = outcome["first"]
        replay = await call(first, "create_job", idempotency_key="k1", **BOOKING)
    assert new_customers(rig) == 1 and len(rig.fake.jobs) == 1, "the takeover read the customer back"
    assert taken_over["customer_created"] and replay == taken_over
    assert late.is_error and "took over" in late.content[0].text  # it stopped at its recovery point, wrote no job


async def test_a_call_cut_off_after_recording_the_customer_resumes_from_that_recovery_point(rig: Rig) -> None:
    cut = Stall(rig.transport, "POST", "/jobs", fail=True)  # the job is never sent
    resumed = Stall(rig.transport, "", "")  # matches nothing: records what went through
    async with opened(servers(rig, [cut, resumed])) as (first, second):
        failed = await first.call_tool("create_job", {"idempotency_key": "k1", **BOOKING})
        booked = await call(second, "create_job", idempotency_key="k1", **BOOKING)
    assert failed.is_error and booked["customer_created"]
    assert new_customers(rig) == 1 and len(rig.fake.jobs) == 1
    # Resumed from the recorded customer: no search for it, straight to the job.
    assert not any(path.endswith("/customers") for _, path in resumed.sent)
    assert any(method == "POST" and path.endswith("/jobs") for method, path in resumed.sent)


class Ask(BaseModel):
    a: int = 0


class Made(BaseModel):
    row: str


async def test_a_call_whose_wait_for_the_keys_holder_runs_out_is_told_to_retry_with_the_same_key(shared: Path | str) -> None:
    holder_db, waiter_db = open_store(shared), open_store(shared)
    release, started = anyio.Event(), anyio.Event()

    async def slow(_: Attempt) -> Made:
        started.set()
        await release.wait()
        return Made(row="r1")

    async def quick(_: Attempt) -> Made:
        raise AssertionError("a second writer ran")

    def run(db: Database, write: Any, wait: float) -> Any:
        return IdempotentWriter(db, in_transaction=False, wait=wait).run(
            tenant="t", actor="me", tool="x", key="k", request=Ask(), result_type=Made, result_id=lambda m: m.row,
            write=write)

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            answers: list[Made] = []

            async def first() -> None:
                answers.append(await run(holder_db, slow, 10))

            tg.start_soon(first)
            await started.wait()
            with pytest.raises(KeyBusy, match="retry in a few seconds with the same idempotency_key"):
                await run(waiter_db, quick, 0.3)
            release.set()
        assert answers == [Made(row="r1")]
        assert await run(waiter_db, quick, 1) == Made(row="r1")  # the retry replays
    row = holder_db.read(lambda c: c.execute("SELECT state, holder, phase FROM idempotency").fetchone())
    assert tuple(row) == ("done", None, None)
    holder_db.close()
    waiter_db.close()


def test_21_sends_of_one_key_across_three_stateless_processes_book_one_servicetitan_job(tmp_path: Path) -> None:
    fake = FakeServiceTitan()
    fake.add_technician("Dana Reyes", "HVAC; plumbing")
    db = tmp_path / "replicas.db"
    with serve.serving(fake.app) as url:
        env = {**ENV, **connector_env(url)}
        key = new_key(db, "voice", *SCOPES, env=env)
        with serving(db, "--stateless", env=env) as a, serving(db, "--stateless", env=env) as b, \
                serving(db, "--stateless", env=env) as c:
            answers = anyio.run(_send_everywhere, [a, b, c], key, "replica-1", 21)
    assert len(answers) == 21 and all(x == answers[0] for x in answers), "every process answered the same job"
    assert len(fake.jobs) == 1, f"{len(fake.jobs)} jobs at ServiceTitan for one key"
    assert len(fake.customers) == 1


async def _send_everywhere(bases: list[str], key: str, idempotency_key: str, sends: int) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []

    async def send(n: int) -> None:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60) as http, \
                Client(streamable_http_client(bases[n % len(bases)] + "/mcp", http_client=http)) as session:
            answers.append(await call(session, "create_job", idempotency_key=idempotency_key, **BOOKING))

    with anyio.fail_after(90):
        async with anyio.create_task_group() as tg:
            for n in range(sends):
                tg.start_soon(send, n)
    return answers
