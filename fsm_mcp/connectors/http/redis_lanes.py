"""Lanes kept in Redis: one pace and one hold per (vendor, tenant) for every replica.

Each lane is three keys under one hash tag (so a Redis Cluster keeps them in one slot):
`hold` (when the hold ends), `next` (the next free slot of the pace) and `era` (counts
holds). Times are Redis's own clock (`TIME`), in milliseconds, so replicas whose clocks
disagree still share one schedule. Taking a slot and recording a hold are each one Lua
script, atomic across replicas; after sleeping to its slot a request checks that no hold
came meanwhile (the era is unchanged) before it goes.

When Redis cannot be reached, no request is sent: replicas that each went their own way
would together exceed the vendor's limit. The call says so and asks to try again.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import anyio
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from fsm_mcp.connectors.http.lanes import Held
from fsm_mcp.connectors.http.limits import MARGIN
from fsm_mcp.errors import VendorUnavailable

log = logging.getLogger("fsm_mcp")

# KEYS: hold, next, era. ARGV: the pace's interval (ms). -> {0, ms left of the hold, era} or {1, ms to the slot, era}
TURN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local era = redis.call('GET', KEYS[3]) or '0'
local hold = tonumber(redis.call('GET', KEYS[1]) or '0')
if hold > now then return {0, tostring(hold - now), era} end
local slot = math.max(now, tonumber(redis.call('GET', KEYS[2]) or '0'))
local interval = tonumber(ARGV[1])
redis.call('SET', KEYS[2], tostring(slot + interval), 'PX', math.ceil(slot + interval - now) + 60000)
return {1, tostring(slot - now), era}
"""

# KEYS: hold, next, era. ARGV: the hold (ms). A shorter hold than the one in force changes nothing.
HOLD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local ends = now + tonumber(ARGV[1])
if ends <= tonumber(redis.call('GET', KEYS[1]) or '0') then return 0 end
local ttl = math.ceil(ends - now) + 60000
redis.call('SET', KEYS[1], tostring(ends), 'PX', ttl)
redis.call('SET', KEYS[2], tostring(ends), 'PX', ttl)
redis.call('INCR', KEYS[3])
return 1
"""


class RedisLane:
    def __init__(self, lanes: RedisLanes, vendor: str, tenant: str, rate: float) -> None:
        self.vendor = vendor
        self._lanes = lanes
        base = f"{lanes.prefix}{{{vendor}:{tenant}}}:"
        self._keys = [base + "hold", base + "next", base + "era"]
        self._interval_ms = 1000 / (rate * MARGIN)

    async def turn(self, deadline: float = math.inf) -> None:
        while True:
            free, wait_ms, era = await self._run(self._lanes.turn_script, self._interval_ms)
            wait = float(wait_ms) / 1000
            if not int(free):
                if time.monotonic() + wait > deadline:
                    raise Held(wait)
                await anyio.sleep(wait)
                continue
            if wait <= 0:
                return  # the script saw no hold and gave a slot now: nothing can have come between
            await anyio.sleep(wait)
            if (await self._call(self._lanes.redis.get, self._keys[2]) or b"0") == era:
                return  # no hold came while this request slept to its slot

    async def hold(self, seconds: float) -> None:
        try:
            await self._lanes.hold_script(keys=self._keys, args=[seconds * 1000])
        except RedisError as exc:  # the next turn fails for the same reason and sends nothing
            log.warning("could not record %s's hold in Redis (%s)", self.vendor, type(exc).__name__)

    async def _run(self, script: Any, *args: Any) -> Any:
        return await self._call(script, keys=self._keys, args=list(args))

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except RedisError as exc:
            raise VendorUnavailable(
                f"fsm-mcp's shared rate limiter (Redis) could not be reached ({type(exc).__name__}), so nothing was "
                f"sent to {self.vendor}: replicas pacing themselves apart would exceed its limit. Try again in a minute."
            ) from None


class RedisLanes:
    """Lanes in the Redis at `redis`; `prefix` keeps them apart from anything else stored there."""

    def __init__(self, redis: aioredis.Redis, prefix: str = "fsm-mcp:lane:") -> None:
        self.redis = redis
        self.prefix = prefix
        self.turn_script = redis.register_script(TURN)
        self.hold_script = redis.register_script(HOLD)
        self._lanes: dict[tuple[str, str], RedisLane] = {}

    @classmethod
    def from_url(cls, url: str, prefix: str = "fsm-mcp:lane:") -> RedisLanes:
        # Short timeouts: a request waits on Redis before every send, and a voice caller is waiting on the request.
        return cls(aioredis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0), prefix)

    def lane(self, vendor: str, tenant: str, rate: float) -> RedisLane:
        key = (vendor, tenant)
        if key not in self._lanes:
            self._lanes[key] = RedisLane(self, vendor, tenant, rate)
        return self._lanes[key]

    async def aclose(self) -> None:
        await self.redis.aclose()
