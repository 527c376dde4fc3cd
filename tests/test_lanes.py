"""Lanes: a 429 holds every request to the tenant, of every caller, in this process and (over
Redis) in every replica; the fakes count any request that arrives inside a hold."""

from __future__ import annotations

import bisect
import heapq
import math
import random
import time
from collections.abc import Awaitable, Callable
from functools import partial

import anyio
import httpx2 as httpx
import pytest
from pydantic import SecretStr
from redis import asyncio as aioredis

from fsm_mcp.connectors.fieldpulse.api import FieldPulseApi
from fsm_mcp.connectors.http.auth import ApiKey
from fsm_mcp.connectors.http.client import Policy, VendorClient, http_client
from fsm_mcp.connectors.http.lanes import Held, Lane, Lanes, LocalLanes, open_lanes
from fsm_mcp.connectors.http.limits import Breaker
from fsm_mcp.connectors.servicetitan.api import ServiceTitanApi
from fsm_mcp.errors import VendorUnavailable
from tests.fakes import fieldpulse, servicetitan
from tests.fakes.chaos import Chaos
from tests.fakes.serve import serving
from tests.fakes.tenant_limits import GRACE, Holds
from tests.redis_rig import REDIS_URL, closed_port, needs_redis

pytestmark = pytest.mark.anyio
PATIENT = Policy(attempts=50, budget=60.0, base=0.01, cap=0.2)  # every call lives through its holds
def redis_lanes(prefix: str) -> Lanes:
    from fsm_mcp.connectors.http.redis_lanes import RedisLanes

    return RedisLanes.from_url(REDIS_URL, prefix)


async def many_reads(apis: list[ServiceTitanApi], n: int) -> None:
    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(apis[i % len(apis)].get, "settings", "business-units")


async def test_a_local_lane_sends_nothing_inside_a_hold_and_voids_the_slots_taken_before_it() -> None:
    now = [0.0]
    lane = LocalLanes(clock=lambda: now[0]).lane("Vendor", "t1", 100)
    await lane.hold(2.0)
    with pytest.raises(Held) as held:
        await lane.turn(deadline=1.0)  # the hold outlasts this caller's budget: it is told at once
    assert held.value.seconds == 2.0
    now[0] = 2.0
    await lane.turn(deadline=math.inf)  # the hold has passed: the first turn comes at once
    assert lane.pace.reserve() == pytest.approx(1 / 95)  # and the schedule begins again at its end


async def test_two_backends_of_one_tenant_in_a_process_share_one_lane() -> None:
    lanes = LocalLanes()
    settings = servicetitan.connector_settings("http://st.test")
    http = httpx.AsyncClient(base_url="http://st.test")
    one, two = ServiceTitanApi(settings, http, lanes=lanes), ServiceTitanApi(settings, http, lanes=lanes)
    other = ServiceTitanApi(servicetitan.connector_settings("http://st.test", tenant_id="2002"), http, lanes=lanes)
    assert one.client.lane is two.client.lane
    assert other.client.lane is not one.client.lane
    await http.aclose()


async def test_many_concurrent_calls_of_two_backends_over_a_servicetitan_that_429s_send_nothing_inside_a_hold() -> None:
    fake = servicetitan.FakeServiceTitan(Chaos(p429=0.05, retry_after="0.5", latency=0.005, seed=3))
    lanes = LocalLanes()
    with serving(fake.app) as url:
        settings = servicetitan.connector_settings(url)
        apis = [ServiceTitanApi(settings, http_client(url), PATIENT, lanes) for _ in range(2)]
        with anyio.fail_after(60):
            await many_reads(apis, 160)
        for api in apis:
            await api.client.http.aclose()
    assert fake.door.count_429 >= 3  # the run was throttled, several times
    assert fake.door.inside_hold == 0, fake.door.too_early[:5]


async def test_many_concurrent_calls_over_a_fieldpulse_that_429s_send_nothing_before_its_reset() -> None:
    fake = fieldpulse.FakeFieldPulse(Chaos(p429=0.05, retry_after="0.2", latency=0.005, seed=5))
    with serving(fake.app) as url:
        api = FieldPulseApi(fieldpulse.connector_settings(url), http_client(url), PATIENT)
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for _ in range(80):
                    tg.start_soon(api.get, "/users", {"limit": 10})
        await api.client.http.aclose()
    assert fake.door.count_429 >= 2
    assert fake.door.inside_hold == 0, fake.door.too_early[:5]


async def test_the_fake_counts_a_request_to_the_tenant_inside_a_hold_whichever_request_it_is() -> None:
    fake = servicetitan.FakeServiceTitan(Chaos(p429=1.0, retry_after="5"))
    with serving(fake.app) as url:
        settings = servicetitan.connector_settings(url)
        careless = [ServiceTitanApi(settings, http_client(url), Policy(attempts=1, budget=1)) for _ in range(2)]
        for api, path in zip(careless, ("business-units", "technicians"), strict=True):  # two lanes: nobody holds
            with pytest.raises(VendorUnavailable):
                await api.get("settings", path)
            await api.client.http.aclose()
            counted_from, _ = fake.door.holds.spans[""]
            with anyio.fail_after(1):  # past the moment the 429 could have reached a client
                while time.monotonic() <= counted_from:
                    await anyio.sleep(0.01)
    assert fake.door.count_429 == 2
    assert fake.door.inside_hold == 1  # the second, a different request, arrived inside the first one's hold


async def test_a_call_whose_budget_ends_inside_the_hold_says_when_to_try_again_and_sends_nothing() -> None:
    fake = servicetitan.FakeServiceTitan(Chaos(p429=1.0, retry_after="30"))
    with serving(fake.app) as url:
        api = ServiceTitanApi(servicetitan.connector_settings(url), http_client(url), Policy(budget=2))
        with pytest.raises(VendorUnavailable, match="Try again in 30 s"):
            await api.get("settings", "business-units")
        sent = len(fake.door.log)
        with pytest.raises(VendorUnavailable, match=r"nothing was sent\. Try again in (29|30) s"):
            await api.get("jpm", "job-types")
        await api.client.http.aclose()
    assert len(fake.door.log) == sent and fake.door.inside_hold == 0


def test_without_a_redis_url_the_lanes_are_the_process_own() -> None:
    assert isinstance(open_lanes(None), LocalLanes) and isinstance(open_lanes(""), LocalLanes)


@needs_redis
async def test_two_replicas_lanes_over_redis_share_one_hold(redis_prefix: str) -> None:
    one, two = redis_lanes(redis_prefix), redis_lanes(redis_prefix)
    try:
        await one.lane("ServiceTitan", "1001", 60).hold(5.0)
        with pytest.raises(Held) as held:
            await two.lane("ServiceTitan", "1001", 60).turn(deadline=time.monotonic() + 1)
        assert 4.0 < held.value.seconds <= 5.0
        with anyio.fail_after(2):
            await two.lane("ServiceTitan", "2002", 60).turn()  # another tenant's lane is not held
    finally:
        await one.aclose()
        await two.aclose()


@needs_redis
async def test_two_replicas_lanes_over_redis_share_one_pace(redis_prefix: str) -> None:
    replicas = [redis_lanes(redis_prefix) for _ in range(2)]
    lanes = [r.lane("FieldPulse", "key", 100) for r in replicas]
    times: list[float] = []

    async def send(n: int) -> None:
        await lanes[n % 2].turn()
        times.append(time.monotonic())

    try:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for n in range(41):
                    tg.start_soon(send, n)
    finally:
        for r in replicas:
            await r.aclose()
    times.sort()
    assert times[-1] - times[0] >= 40 / 95 - 0.02  # one schedule for both: 40 slots 1/95 s apart, not 20
    busiest = max(sum(1 for u in times if t <= u < t + 0.1) for t in times)
    assert busiest <= 11


@needs_redis
async def test_two_replicas_over_redis_send_nothing_inside_a_hold_one_of_them_was_given(redis_prefix: str) -> None:
    fake = servicetitan.FakeServiceTitan(Chaos(p429=0.05, retry_after="0.5", latency=0.005, seed=11))
    replicas = [redis_lanes(redis_prefix) for _ in range(2)]
    try:
        with serving(fake.app) as url:
            settings = servicetitan.connector_settings(url)
            apis = [ServiceTitanApi(settings, http_client(url), PATIENT, lanes) for lanes in replicas]
            with anyio.fail_after(60):
                await many_reads(apis, 160)
            for api in apis:
                await api.client.http.aclose()
    finally:
        for r in replicas:
            await r.aclose()
    assert fake.door.count_429 >= 3
    assert fake.door.inside_hold == 0, fake.door.too_early[:5]


@needs_redis
async def test_an_unreachable_redis_sends_nothing_and_says_so() -> None:
    from fsm_mcp.connectors.http.redis_lanes import RedisLanes

    lanes = RedisLanes.from_url(f"redis://127.0.0.1:{closed_port()}/0")
    with pytest.raises(VendorUnavailable, match="shared rate limiter"):
        await lanes.lane("ServiceTitan", "1001", 60).turn()
    await lanes.aclose()


class VirtualTime:
    """A clock for tasks that also wait on Redis: it moves only when every task is asleep on it, to the
    earliest wake-up, so a test of the pace takes no real time and a late wake-up is exactly as late as asked."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._live = 0
        self._idle = anyio.Event()

    def clock(self) -> float:
        return self.now

    async def sleep_until(self, at: float) -> None:
        woken = anyio.Event()
        heapq.heappush(self._sleepers, (max(at, self.now), len(self._sleepers) + id(woken), woken))
        self._check()
        await woken.wait()

    async def run(self, jobs: list[Callable[[], Awaitable[None]]]) -> None:
        async def one(job: Callable[[], Awaitable[None]]) -> None:
            try:
                await job()
            finally:
                self._live -= 1
                self._check()

        async with anyio.create_task_group() as tg:
            self._live = len(jobs)
            for job in jobs:
                tg.start_soon(one, job)
            while self._live:
                await self._idle.wait()
                self._idle = anyio.Event()
                if self._sleepers:
                    self.now, _, woken = heapq.heappop(self._sleepers)
                    woken.set()

    def _check(self) -> None:
        if len(self._sleepers) == self._live:
            self._idle.set()


@needs_redis
async def test_over_redis_a_replica_that_wakes_late_never_bunches_the_lanes_requests_past_the_limit(
        redis_prefix: str) -> None:
    from fsm_mcp.connectors.http.redis_lanes import RedisLanes

    time_ = VirtualTime()

    async def starved(seconds: float) -> None:  # a replica short of CPU: whoever should wake in a stall wakes at its end
        at = time_.now + seconds
        if 0.5 <= at % 1.2 < 0.9:
            at += 0.9 - at % 1.2
        await time_.sleep_until(at)

    async def fine(seconds: float) -> None:
        await time_.sleep_until(time_.now + seconds)

    replicas = [RedisLanes(aioredis.Redis.from_url(REDIS_URL), redis_prefix, time_.clock, sleep)
                for sleep in (starved, fine, fine)]
    lanes = [r.lane("ServiceTitan", "1001", 20) for r in replicas]
    sent: list[float] = []

    async def send(lane: Lane) -> None:
        await lane.turn()
        sent.append(time_.now)

    try:
        with anyio.fail_after(30):
            await time_.run([partial(send, lanes[0 if n % 2 else 1 + n % 4 // 2]) for n in range(120)])
    finally:
        for r in replicas:
            await r.aclose()
    sent.sort()
    busiest = max(bisect.bisect_left(sent, t + 1.0) - i for i, t in enumerate(sent))
    assert busiest <= 20  # in any second, sliding or by the calendar
    # And not by going slowly: while the replicas that keep up still have requests to send, 80 % of the limit or
    # more (a stall a third of the time costs the slots the stalled replica could not catch up within the window).
    first = sent[:80]
    assert (len(first) - 1) / (first[-1] - first[0]) >= 0.8 * 20


@needs_redis
async def test_over_redis_a_lane_told_of_its_answers_keeps_the_limit_however_late_its_requests_reach_the_vendor(
        redis_prefix: str) -> None:
    from fsm_mcp.connectors.http.redis_lanes import RedisLanes

    time_ = VirtualTime()

    def stalled(at: float, start: float, end: float) -> float:  # what falls in a stall (each 1.2 s) waits out its end
        return at + end - at % 1.2 if start <= at % 1.2 < end else at

    async def sleep(seconds: float) -> None:
        await time_.sleep_until(time_.now + seconds)

    replicas = [RedisLanes(aioredis.Redis.from_url(REDIS_URL), redis_prefix, time_.clock, sleep) for _ in range(3)]
    lanes = [r.lane("ServiceTitan", "1001", 20) for r in replicas]
    for lane in lanes:
        lane.watch(httpx.AsyncClient())
    arrived: list[float] = []

    async def send(n: int) -> None:
        lane = lanes[n % 3]
        await lane.turn()
        # admitted, then held up on the way out (replica 0 is short of CPU a third of the time), and counted late by
        # a vendor busy answering (now and then for 0.1 s)
        on_its_way = time_.now + 0.002
        await time_.sleep_until(stalled(stalled(on_its_way, 0.5, 0.9) if n % 3 == 0 else on_its_way, 1.0, 1.1))
        arrived.append(time_.now)
        await time_.sleep_until(time_.now + 0.005)  # the answer's way back
        await lane.answered()

    try:
        with anyio.fail_after(30):
            await time_.run([partial(send, n) for n in range(120)])
    finally:
        for r in replicas:
            await r.aclose()
    arrived.sort()
    assert max(bisect.bisect_left(arrived, t + 1.0) - i for i, t in enumerate(arrived)) <= 20
    first = arrived[:80]
    assert (len(first) - 1) / (first[-1] - first[0]) >= 0.8 * 20


@needs_redis
async def test_over_redis_a_servicetitan_lane_counts_each_request_from_its_answer(redis_prefix: str) -> None:
    fake = servicetitan.FakeServiceTitan(Chaos(latency=0.3))  # each answer 0.3 s after its request
    lanes = redis_lanes(redis_prefix)
    redis = aioredis.Redis.from_url(REDIS_URL)
    try:
        with serving(fake.app) as url:
            api = ServiceTitanApi(servicetitan.connector_settings(url), http_client(url), PATIENT, lanes)
            await api.client.auth.headers()  # the token first: its exchange is not a request to the tenant
            seconds, micro = await redis.time()
            with anyio.fail_after(10):
                await many_reads([api], 3)
            await api.client.http.aclose()
        counted = await redis.zrange(f"{redis_prefix}{{ServiceTitan:1001}}:sent", 0, -1, withscores=True)
    finally:
        await redis.aclose()
        await lanes.aclose()
    before = seconds * 1000 + micro / 1000
    assert len(counted) == 3
    assert all(300 <= score - before < 5000 for _, score in counted)  # from its answer: not its admission, not pending


@needs_redis
async def test_over_redis_a_request_slow_to_leave_after_its_turn_looks_again_and_arrives_inside_no_hold(
        redis_prefix: str) -> None:
    from fsm_mcp.connectors.http.redis_lanes import RedisLanes

    time_ = VirtualTime()

    async def sleep(seconds: float) -> None:
        await time_.sleep_until(time_.now + seconds)

    holds, rng = Holds(time_.clock), random.Random(5)  # the vendor's: it forgives what was on its way (GRACE)
    refused: list[float] = []

    async def vendor(_: httpx.Request) -> httpx.Response:
        holds.arrived("")
        await sleep(0.005)  # answering; 3 answers in 10 are a 429, and the way back takes 2 ms
        if rng.random() < 0.3:
            holds.hold("", 0.2)
            refused.append(time_.now)
            answer = httpx.Response(429, headers={"Retry-After": "0.2"})
        else:
            answer = httpx.Response(200)
        await sleep(0.002)
        return answer

    replicas = [RedisLanes(aioredis.Redis.from_url(REDIS_URL), redis_prefix, time_.clock, sleep) for _ in range(3)]
    lanes = [r.lane("ServiceTitan", "1001", 20) for r in replicas]
    clients = [httpx.AsyncClient(base_url="http://st.test", transport=httpx.MockTransport(vendor)) for _ in lanes]
    for lane, http in zip(lanes, clients, strict=True):
        lane.watch(http)
    not_sent: list[float] = []

    async def send(n: int) -> None:
        lane, http = lanes[n % 3], clients[n % 3]
        while True:
            await lane.turn()
            if n % 3 == 0:
                await sleep(GRACE)  # replica 0, short of CPU, gets round to its admitted requests a GRACE late
            try:
                answer = await http.get("/jobs")
            except Held as held:
                not_sent.append(held.seconds)
                await sleep(held.seconds)
                continue
            if answer.status_code != 429:
                return
            await sleep(0.2)

    try:
        with anyio.fail_after(30):
            await time_.run([partial(send, n) for n in range(60)])
    finally:
        for r, http in zip(replicas, clients, strict=True):
            await http.aclose()
            await r.aclose()
    assert len(refused) >= 10 and holds.inside[""] == 0
    assert not_sent  # the last look found holds begun since the turn (else no request was late into one)


@needs_redis
async def test_a_vendor_client_sends_nothing_into_a_hold_begun_after_its_turn_and_sends_it_after(
        redis_prefix: str) -> None:
    from fsm_mcp.connectors.http.redis_lanes import RedisLane, RedisLanes

    behind = [0.0]  # how far this replica's reading of the clock lags: it was busy after its turn
    replicas = [RedisLanes(aioredis.Redis.from_url(REDIS_URL), redis_prefix, lambda: time.monotonic() + behind[0])
                for _ in range(2)]
    mine, other = (r.lane("ServiceTitan", "1001", 20) for r in replicas)
    arrived: list[float] = []

    def vendor(_: httpx.Request) -> httpx.Response:
        arrived.append(replicas[0].clock())
        return httpx.Response(200, json={"ok": True})

    class BusyAfterItsFirstTurn:
        """`mine`, in a replica that takes 20 ms to send its first admitted request, while the other's 429 comes."""

        def __init__(self, lane: RedisLane) -> None:
            self.lane = lane
            self.ends: float | None = None

        async def turn(self, deadline: float = math.inf) -> None:
            await self.lane.turn(deadline)
            if self.ends is None:
                self.ends = replicas[0].clock() + 0.1
                await other.hold(0.1)
                behind[0] += 0.02

        async def hold(self, seconds: float) -> None:
            await self.lane.hold(seconds)

    http = httpx.AsyncClient(base_url="http://st.test", transport=httpx.MockTransport(vendor))
    mine.watch(http)
    lane = BusyAfterItsFirstTurn(mine)
    client = VendorClient("ServiceTitan", http, ApiKey("ST-App-Key", SecretStr("k")), lane, Breaker("ServiceTitan"))
    try:
        with anyio.fail_after(5):
            assert await client.get("/jobs") == {"ok": True}
    finally:
        await http.aclose()
        for r in replicas:
            await r.aclose()
    assert lane.ends is not None and len(arrived) == 1 and arrived[0] >= lane.ends
