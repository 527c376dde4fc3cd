"""Several replicas: with FSM_MCP_REDIS_URL a caller's limits are one count whichever replica answers,
and an unreachable Redis refuses rather than lets a call through uncounted; without Redis each replica
paces its vendors at its share of the published rate (FSM_MCP_REPLICAS)."""

from __future__ import annotations

import pytest

from fsm_mcp.access.callers import SCOPES, Caller
from fsm_mcp.access.limits import CallerLimits
from fsm_mcp.connectors.http.lanes import LocalLanes, open_lanes
from fsm_mcp.connectors.http.limits import MARGIN
from fsm_mcp.settings import load_businesses
from tests.redis_rig import REDIS_URL, closed_port, needs_redis

pytestmark = pytest.mark.anyio
VOICE_BOT = Caller("key:voice-bot", "default", frozenset(SCOPES))


def shared_limits(prefix: str, url: str = REDIS_URL) -> CallerLimits:
    return CallerLimits(calls_per_minute=100, writes_per_minute=3, redis_url=url, redis_prefix=prefix + "limits")


@needs_redis
async def test_over_redis_two_replicas_count_one_callers_writes_together(redis_prefix: str) -> None:
    one, two = shared_limits(redis_prefix), shared_limits(redis_prefix)
    assert [await one.refusal(VOICE_BOT, writes=True), await two.refusal(VOICE_BOT, writes=True),
            await one.refusal(VOICE_BOT, writes=True)] == [None, None, None]
    refusal = await two.refusal(VOICE_BOT, writes=True)
    assert refusal is not None and "at most 3 a minute" in refusal
    other = Caller("key:dispatch-desk", "default", frozenset(SCOPES))
    assert await two.refusal(other, writes=True) is None  # another caller has a minute of its own


async def test_in_one_process_without_redis_two_limiters_count_apart() -> None:
    one, two = CallerLimits(100, 1), CallerLimits(100, 1)
    assert await one.refusal(VOICE_BOT, writes=True) is None
    assert await two.refusal(VOICE_BOT, writes=True) is None  # each process allows the rate


async def test_an_unreachable_redis_refuses_the_call_rather_than_let_it_through_uncounted() -> None:
    limits = CallerLimits(100, 10, redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    refusal = await limits.refusal(VOICE_BOT, writes=False)
    assert refusal is not None and "cannot be reached" in refusal and "nothing was done" in refusal


async def test_without_redis_each_of_three_replicas_paces_a_vendor_at_a_third_of_its_rate() -> None:
    now = [0.0]
    lanes = open_lanes(None, replicas=3)
    assert isinstance(lanes, LocalLanes)
    lane = LocalLanes(lambda: now[0], replicas=3).lane("ServiceTitan", "1001", 30)
    waits = [lane.pace.reserve() for _ in range(4)]
    gap = 1 / (30 * MARGIN / 3)
    assert waits == pytest.approx([0, gap, 2 * gap, 3 * gap])
    alone = LocalLanes(lambda: now[0]).lane("ServiceTitan", "1001", 30)
    assert [alone.pace.reserve() for _ in range(2)][1] == pytest.approx(gap / 3)


def test_the_replica_settings_are_read_from_the_environment_and_checked() -> None:
    every = load_businesses(env={"FSM_MCP_REDIS_URL": "redis://127.0.0.1:6379/2", "FSM_MCP_REPLICAS": "3"})
    one = next(iter(every.values()))
    assert (one.redis_url, one.replicas) == ("redis://127.0.0.1:6379/2", 3)
    with pytest.raises(ValueError, match="redis_url"):
        load_businesses(env={"FSM_MCP_REDIS_URL": "127.0.0.1:6379"})
    with pytest.raises(ValueError, match="replicas"):
        load_businesses(env={"FSM_MCP_REPLICAS": "0"})
