"""The vendor HTTP kit against scripted answers (httpx's MockTransport): tokens, pacing,
Retry-After, retries that cannot duplicate a write, the circuit breaker."""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from email.utils import formatdate
from itertools import pairwise

import anyio
import httpx2 as httpx
import pytest
from pydantic import SecretStr

from fsm_mcp.connectors.http.auth import ApiKey, ClientCredentials
from fsm_mcp.connectors.http.client import Policy, VendorClient, retry_after
from fsm_mcp.connectors.http.limits import Breaker, Pace
from fsm_mcp.errors import VendorRejected, VendorUnavailable, WriteUncertain

pytestmark = pytest.mark.anyio
SECRET = "s3cret-never-shown"
FAST = Policy(attempts=6, budget=10.0, base=0.01, cap=0.05)


def kit(handler: Callable[[httpx.Request], httpx.Response], *, oauth: bool = False, rate: float = 1000.0,
        policy: Policy = FAST) -> tuple[VendorClient, list[tuple[float, httpx.Request]]]:
    seen: list[tuple[float, httpx.Request]] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append((time.monotonic(), request))
        return handler(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(record), base_url="https://vendor.test")
    auth = (ClientCredentials("Vendor", http, "https://auth.test/connect/token", "client", SecretStr(SECRET))
            if oauth else ApiKey("x-api-key", SecretStr(SECRET)))
    return VendorClient("Vendor", http, auth, Pace(rate), Breaker("Vendor", failures=5, cooldown=30), policy), seen


def api_calls(seen: list[tuple[float, httpx.Request]]) -> list[httpx.Request]:
    return [r for _, r in seen if r.url.host == "vendor.test"]


async def test_many_calls_finding_no_token_fetch_one_together() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/connect/token":
            assert b"client_secret=" + SECRET.encode() in request.content
            return httpx.Response(200, json={"access_token": "tok-1", "expires_in": 900})
        assert request.headers["Authorization"] == "Bearer tok-1"
        return httpx.Response(200, json={"ok": True})

    client, seen = kit(handler, oauth=True)
    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(client.get, "/things")
    assert sum(r.url.path == "/connect/token" for _, r in seen) == 1
    assert len(api_calls(seen)) == 20


async def test_a_401_renews_the_token_once_and_the_call_succeeds() -> None:
    tokens = iter(["old", "new"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/connect/token":
            return httpx.Response(200, json={"access_token": next(tokens), "expires_in": 900})
        ok = request.headers["Authorization"] == "Bearer new"
        return httpx.Response(200 if ok else 401, json={"ok": ok})

    client, seen = kit(handler, oauth=True)
    assert await client.get("/things") == {"ok": True}
    assert [r.headers["Authorization"] for r in api_calls(seen)] == ["Bearer old", "Bearer new"]


async def test_credentials_refused_say_so_without_the_secret() -> None:
    client, _ = kit(lambda r: httpx.Response(401, json={"error": "invalid_client"}), oauth=True)
    with pytest.raises(VendorRejected) as caught:
        await client.get("/things")
    assert "client id and secret" in str(caught.value) and SECRET not in str(caught.value)


async def test_a_request_answered_429_is_not_sent_again_before_its_retry_after() -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "1"})])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers, httpx.Response(200, json={"n": 1}))

    client, seen = kit(handler)
    assert await client.get("/a") == {"n": 1}
    assert len(seen) == 2
    assert seen[1][0] - seen[0][0] >= 1.0


async def test_a_retry_after_longer_than_the_budget_gives_up_at_once() -> None:
    client, seen = kit(lambda r: httpx.Response(429, headers={"RateLimit-Reset": str(int(time.time()) + 86400)}))
    started = time.monotonic()
    with pytest.raises(VendorUnavailable, match="rate limiting; tried once"):
        await client.get("/a")
    assert len(seen) == 1 and time.monotonic() - started < 1


def test_retry_after_reads_seconds_http_dates_and_epoch_resets() -> None:
    now = 1_800_000_000.0
    assert retry_after(httpx.Response(429, headers={"Retry-After": "7"}), lambda: now) == 7.0
    date = formatdate(now + 30, usegmt=True)
    assert retry_after(httpx.Response(429, headers={"Retry-After": date}), lambda: now) == pytest.approx(30, abs=1)
    assert retry_after(httpx.Response(429, headers={"RateLimit-Reset": str(int(now) + 3)}), lambda: now) == 3.0
    assert retry_after(httpx.Response(429), lambda: now) is None


async def test_a_read_is_retried_through_5xx_and_a_give_up_says_how_long_it_tried() -> None:
    failures = iter([503, 502])
    client, seen = kit(lambda r: httpx.Response(next(failures, 200), json={"fine": True}))
    assert await client.get("/x") == {"fine": True}
    assert len(seen) == 3

    client, seen = kit(lambda r: httpx.Response(503), policy=Policy(attempts=4, budget=10, base=0.01, cap=0.02))
    with pytest.raises(VendorUnavailable) as caught:
        await client.get("/x")
    assert len(seen) == 4
    assert str(caught.value) == "Vendor is failing (HTTP 503); tried 4 times over 0 s. Try again in a minute."


async def test_a_write_whose_answer_is_lost_is_not_sent_again_without_a_read_back() -> None:
    client, seen = kit(lambda r: httpx.Response(503))
    with pytest.raises(WriteUncertain) as caught:
        await client.write("POST", "/jobs", json={"a": 1}, what="the job")
    assert len(seen) == 1
    assert "may or may not have made the job" in str(caught.value)


async def test_a_write_the_read_back_finds_done_is_not_sent_again() -> None:
    client, seen = kit(lambda r: httpx.Response(504))

    async def done() -> dict[str, int]:
        return {"id": 7}

    assert await client.write("POST", "/jobs", json={}, check=done) == {"id": 7}
    assert len(seen) == 1


async def test_a_write_the_read_back_finds_not_done_is_sent_again() -> None:
    answers = iter([500])
    client, seen = kit(lambda r: httpx.Response(next(answers, 200), json={"id": 8}))

    async def not_done() -> None:
        return None

    assert await client.write("POST", "/jobs", json={}, check=not_done) == {"id": 8}
    assert len(seen) == 2


async def test_a_write_that_never_connected_or_was_rate_limited_is_sent_again() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ConnectError("refused", request=request)
        if calls == 2:
            return httpx.Response(429, headers={"Retry-After": "0"})
        return httpx.Response(200, json={"id": 9})

    client, _ = kit(handler)
    assert await client.write("POST", "/jobs", json={}) == {"id": 9}
    assert calls == 3


async def test_the_breaker_stops_calling_a_vendor_that_keeps_failing() -> None:
    client, seen = kit(lambda r: httpx.Response(500), policy=Policy(attempts=5, budget=10, base=0.01, cap=0.02))
    with pytest.raises(VendorUnavailable):
        await client.get("/x")
    sent = len(seen)
    with pytest.raises(VendorUnavailable) as caught:
        await client.get("/x")
    assert len(seen) == sent  # nothing sent while open
    assert "stopped calling it" in str(caught.value)


async def test_requests_leave_no_faster_than_the_published_rate() -> None:
    client, seen = kit(lambda r: httpx.Response(200, json={}), rate=100)
    async with anyio.create_task_group() as tg:
        for _ in range(21):
            tg.start_soon(client.get, "/x")
    times = sorted(at for at, _ in seen)
    assert times[-1] - times[0] >= 0.19  # 20 slots 1/(100 x 0.95) s apart, less timer slack
    busiest = max(bisect.bisect_left(times, t + 0.1) - i for i, t in enumerate(times))
    assert busiest <= 11  # the rate's 10 in a tenth of a second, one more if the loop woke a waiter late


async def test_a_validation_refusal_is_not_retried_and_names_the_problem() -> None:
    client, seen = kit(lambda r: httpx.Response(400, json={"title": "bad"}))
    client._describe = lambda r: r.json()["title"]
    with pytest.raises(VendorRejected, match="refused the request: bad"):
        await client.write("POST", "/jobs", json={})
    assert len(seen) == 1


async def test_a_later_call_inside_the_hold_is_refused_at_once_saying_when_and_a_patient_one_waits() -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "1"})])
    client, seen = kit(lambda r: next(answers, httpx.Response(200, json={"n": 2})),
                       policy=Policy(attempts=6, budget=0.5, base=0.01, cap=0.05))
    with pytest.raises(VendorUnavailable):  # the wait outlasts this call's budget: it gives up at once
        await client.get("/a", {"q": 1})
    with pytest.raises(VendorUnavailable, match=r"asked fsm-mcp to wait; nothing was sent\. Try again in 1 s"):
        await client.get("/b")  # another request of the same tenant: held too, and not sent
    assert len(seen) == 1
    assert await client.get("/c", budget=5) == {"n": 2}  # a call whose budget covers the hold waits it out
    assert seen[1][0] - seen[0][0] >= 1.0


async def test_a_429_holds_every_request_of_the_tenant_not_only_the_one_it_answered() -> None:
    throttled = anyio.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        if not throttled.is_set():
            throttled.set()
            return httpx.Response(429, headers={"Retry-After": "1"})
        return httpx.Response(200, json={})

    client, seen = kit(handler, rate=200)
    async with anyio.create_task_group() as tg:
        for n in range(30):
            tg.start_soon(client.get, f"/thing/{n}")
    first = seen[0][0]
    assert len(seen) == 31
    assert all(at - first >= 1.0 for at, _ in seen[1:])  # none of the 30 left inside the hold
    times = sorted(at for at, _ in seen[1:])
    assert times[-1] - times[0] >= 29 / (200 * 0.95) - 0.01  # after it, they resume at the pace, not all at once


async def test_a_429_is_retried_when_its_retry_after_has_passed_not_a_backoff_later() -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "0.3"})] * 3)
    client, seen = kit(lambda r: next(answers, httpx.Response(200, json={})),
                       policy=Policy(attempts=6, budget=20, base=1.0, cap=8.0))
    await client.get("/a")
    gaps = [b - a for a, b in pairwise(at for at, _ in seen)]
    assert len(gaps) == 3 and all(0.3 <= gap < 0.8 for gap in gaps)  # a backoff would be 1-2, 2-3, 4-5 s


async def test_the_backoff_after_a_5xx_is_jittered_by_a_base_at_most() -> None:
    failures = iter([503, 503, 503])
    client, seen = kit(lambda r: httpx.Response(next(failures, 200), json={}),
                       policy=Policy(attempts=6, budget=20, base=0.05, cap=4.0))
    await client.get("/a")
    assert seen[-1][0] - seen[0][0] < 0.9  # 0.05-0.1, 0.1-0.15 and 0.2-0.25 s; not up to a second more each
