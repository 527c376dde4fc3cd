"""Webhooks out: signed deliveries, never a redirect followed, dead letters for a failing subscriber while
the others go on, and every event in order per subject for one that was down."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
from click.testing import CliRunner
from standardwebhooks import Webhook

from fsm_mcp.cli import main
from fsm_mcp.errors import InvalidInput
from fsm_mcp.events import outbox, webhooks
from fsm_mcp.events.delivery import Deliverer, Policy, http_client
from fsm_mcp.settings import Settings
from fsm_mcp.store import Store, open_store

pytestmark = pytest.mark.anyio
TENANT = "default"
FAST = Policy(first_retry=1.0, max_backoff=timedelta(seconds=30), max_attempts=4, max_age=timedelta(hours=1))


class Receivers:
    """Subscribers at the edge (an httpx2 MockTransport): each host answers as its `answer` says."""

    def __init__(self) -> None:
        self.got: dict[str, list[httpx.Request]] = defaultdict(list)  # every attempt
        self.taken: dict[str, list[dict[str, Any]]] = defaultdict(list)  # the bodies answered with a 2xx
        self.answer: dict[str, Callable[[httpx.Request], httpx.Response]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.got[request.url.host].append(request)
        response = self.answer.get(request.url.host, lambda _: httpx.Response(204))(request)
        if response.is_success:
            self.taken[request.url.host].append(json.loads(request.content))
        return response


async def rounds(deliverer: Deliverer, n: int = 1, step: timedelta = timedelta(0)) -> None:
    """`n` passes of the worker, the clock moved by `step` before each (no sleeping)."""
    for _ in range(n):
        deliverer.db.clock.advance(step)
        for sub in await deliverer.fan_out():
            await deliverer.drain(sub)


def test_signing_matches_the_specifications_example() -> None:
    # The example in the Standard Webhooks specification (spec/standard-webhooks.md, "Signature scheme").
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    at = datetime.fromtimestamp(1614265330).astimezone()
    headers = webhooks.signed_headers(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", at, b'{"test": 2432232314}')
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert headers["webhook-timestamp"] == "1614265330"


def test_a_subscriber_url_must_be_https_or_loopback_http_with_the_development_flag() -> None:
    assert webhooks.check_url("https://hooks.example.com/in") == "https://hooks.example.com/in"
    assert webhooks.check_url("http://127.0.0.1:9000/in", allow_loopback_http=True)
    for url, said in [("http://hooks.example.com/in", "must be https"),
                      ("http://127.0.0.1:9000/in", "--allow-loopback-http"),
                      ("https://user:pw@hooks.example.com/in", "user name"), ("/in", "absolute")]:
        with pytest.raises(InvalidInput, match=said):
            webhooks.check_url(url)


async def test_a_delivery_is_signed_so_the_receiver_verifies_it_with_the_subscribers_secret(db: Store) -> None:
    got = Receivers()
    sub, secret = await webhooks.add(db, TENANT, "https://a.example/in", ["job.*"])
    await outbox.record(db, TENANT, "job.completed", "job", "job_1", {"status": "completed"})
    await outbox.record(db, TENANT, "invoice.created", "invoice", "inv_1", {"status": "open"})  # not wanted
    async with http_client(httpx.MockTransport(got)) as client:
        await rounds(Deliverer(db, {TENANT: timedelta(days=30)}, client, FAST))
    [request] = got.got["a.example"]
    payload = Webhook(secret).verify(request.content, dict(request.headers))
    assert payload["type"] == "job.completed" and payload["subject"] == {"type": "job", "id": "job_1"}
    assert request.headers["webhook-id"] == payload["id"]
    with pytest.raises(Exception, match="signature"):
        Webhook(webhooks.new_secret()).verify(request.content, dict(request.headers))
    assert sub.types == ("job.*",)


async def test_a_redirect_is_never_followed_and_counts_as_a_failed_attempt(db: Store) -> None:
    got = Receivers()
    got.answer["a.example"] = lambda _: httpx.Response(307, headers={"location": "https://elsewhere.example/x"})
    sub, _ = await webhooks.add(db, TENANT, "https://a.example/in", [])
    await outbox.record(db, TENANT, "job.created", "job", "job_1", {"status": "scheduled"})
    async with http_client(httpx.MockTransport(got)) as client:
        await rounds(Deliverer(db, {TENANT: timedelta(days=30)}, client, FAST), 6, timedelta(seconds=31))
    assert "elsewhere.example" not in got.got and len(got.got["a.example"]) == 4
    [dead] = await webhooks.dead_letters(db, TENANT, sub.id)
    assert dead["attempts"] == 4 and "redirect, not followed" in dead["last_error"]


async def test_a_subscriber_answering_500_ends_in_dead_letters_and_another_gets_every_event_on_time(
    db: Store,
) -> None:
    got = Receivers()
    got.answer["broken.example"] = lambda _: httpx.Response(500)
    broken, _ = await webhooks.add(db, TENANT, "https://broken.example/in", [])
    await webhooks.add(db, TENANT, "https://fine.example/in", [])
    for n in range(5):
        await outbox.record(db, TENANT, "job.created", "job", f"job_{n}", {"status": "scheduled"})
    async with http_client(httpx.MockTransport(got)) as client:
        deliverer = Deliverer(db, {TENANT: timedelta(days=30)}, client, FAST)
        await rounds(deliverer)
        assert len(got.got["fine.example"]) == 5  # in the first pass, while the broken one fails
        await rounds(deliverer, 6, timedelta(seconds=31))
    assert len(got.got["fine.example"]) == 5
    assert len(await webhooks.dead_letters(db, TENANT, broken.id)) == 5
    assert len(got.got["broken.example"]) == 5 * 4

    got.answer["broken.example"] = lambda _: httpx.Response(200)  # fixed: redeliver the dead letters
    assert await webhooks.redeliver(db, TENANT, broken.id) == 5
    async with http_client(httpx.MockTransport(got)) as client:
        await rounds(Deliverer(db, {TENANT: timedelta(days=30)}, client, FAST))
    assert await webhooks.dead_letters(db, TENANT, broken.id) == []


async def test_a_subscriber_that_was_down_gets_every_event_afterwards_in_order_per_subject(db: Store) -> None:
    got = Receivers()

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    got.answer["down.example"] = down
    await webhooks.add(db, TENANT, "https://down.example/in", [])
    patient = Policy(first_retry=1.0, max_backoff=timedelta(seconds=60), max_attempts=100, max_age=timedelta(days=1))
    async with http_client(httpx.MockTransport(got)) as client:
        deliverer = Deliverer(db, {TENANT: timedelta(days=30)}, client, patient)
        for n in range(30):  # ten minutes of changes while it is down, a pass every 20 s
            await outbox.record(db, TENANT, "job.status_changed", "job", f"job_{n % 3}", {"n": n})
            await rounds(deliverer, 1, timedelta(seconds=20))
        got.answer.pop("down.example")
        await rounds(deliverer, 10, timedelta(seconds=61))
    taken = got.taken["down.example"]
    assert len(taken) == 30 and len({b["id"] for b in taken}) == 30
    per_job: dict[str, list[int]] = defaultdict(list)
    for body in taken:
        per_job[body["subject"]["id"]].append(body["data"]["n"])
    assert all(ns == sorted(ns) for ns in per_job.values()), per_job
    assert len(got.got["down.example"]) > 30  # it was tried while down


def test_the_commands_add_list_and_remove_a_subscriber(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FSM_MCP_DB", str(settings.db_path))
    runner = CliRunner()
    added = runner.invoke(main, ["webhooks", "add", "http://127.0.0.1:9/in"])
    assert added.exit_code != 0 and "--allow-loopback-http" in added.output
    added = runner.invoke(main, ["webhooks", "add", "https://hooks.example/in", "--type", "job.completed"])
    assert added.exit_code == 0, added.output
    sub_id, secret = added.stdout.split()
    assert secret.startswith("whsec_")
    listed = runner.invoke(main, ["webhooks", "list"])
    assert sub_id in listed.output and "job.completed" in listed.output and secret not in listed.output
    assert runner.invoke(main, ["webhooks", "remove", sub_id]).exit_code == 0
    assert sub_id not in runner.invoke(main, ["webhooks", "list"]).output


async def test_the_server_started_to_deliver_posts_a_booking_to_a_loopback_subscriber_over_real_http(
    settings: Settings,
) -> None:
    import socket

    import anyio
    import uvicorn
    from mcp import Client

    from fsm_mcp.server import build_server
    from tests.conftest import MONDAY_9, NEW_CALLER, call

    bodies: list[bytes] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        message = await receive()
        bodies.append(message.get("body", b""))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = open_store(settings.db_path)
    try:
        await webhooks.add(store, TENANT, f"http://127.0.0.1:{port}/in", ["job.created"], allow_loopback_http=True)
    finally:
        store.close()
    receiver = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(receiver.serve)
        async with Client(build_server(settings, deliver_webhooks=True)) as client:
            job = await call(client, "create_job", customer=NEW_CALLER, job_type="hvac", summary="no heat",
                             idempotency_key="k", **MONDAY_9)
            with anyio.fail_after(10):
                while not bodies:
                    await anyio.sleep(0.05)
        receiver.should_exit = True
    [body] = bodies
    assert json.loads(body)["subject"] == {"type": "job", "id": job["job_id"]}
