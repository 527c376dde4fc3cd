"""Lanes kept in Redis: one pace and one hold per (vendor, tenant) for every replica.

A vendor counts the requests that reach it in a window of a second (which one, calendar or
sliding, ServiceTitan does not say), so what must hold is: in any window, no more than the
limit, whichever replica sent them and however late each woke. A slot reserved ahead and
slept to does not: a replica starved of CPU wakes late and its requests land in a later
second on top of that second's own. So a request is admitted only at the moment it is sent:

- `sent`, a sorted set of the times requests were admitted, keeps at most `count` in any
  window of `window` ms (a sliding log): the limit a second, in a window longer than a second
  by the margin (`limits.MARGIN`), so a request that takes up to that much longer on its way
  than another cannot bunch them into a 429 at the vendor;
- `queue` is the next free place of an even schedule, one `interval` (the window's share of
  one request) after the last: a newcomer goes at once only when it has come, else takes a
  place and sleeps to it, so requests go evenly spaced, not in bursts, and waiters wake one at
  a time. A place is only advice: at it the request still asks the log, so one that woke late
  is admitted late and catches up only as far as the log has room, never on top of later ones;
- `hold` is when a 429's wait ends. Nothing is admitted before; waiters get new places after
  it, one interval apart, so the lane resumes at the published rate rather than all at once.

The time a request was admitted is not when it reaches the vendor: a replica busy with other work
(or a vendor's own counter, busy answering) can let more than the margin pass between them, and then
even a log of admissions bunches at the vendor. So a lane that is told when each of its requests was
answered (`watch`: the vendor client's answers, or the same task's next turn if none came) counts by
causality instead: an entry counts from its admission until `window` after its answer, which came after
the vendor saw the request. A request is admitted only while fewer than `count` entries count, so no
`count` + 1 requests can reach the vendor within `window` of each other, however late each was sent or
seen; the window is then the limit's own (count / rate, a second at 20 a second), the margin being given
by the round trip. An entry never answered (a replica killed mid-request) counts `PENDING` seconds.

Admitted is not yet sent: a request that reaches the vendor after another replica's 429 has had time to
reach that replica is refused and counted as inside the hold, though the hold was recorded after its admission.
A replica short of CPU can take tens of ms to read its admission (the fakes forgive 50 ms on the way, their
GRACE). So a watched lane looks again just before the request leaves (`leaving`, the client's request hook),
when more than `FRESH` has passed since its admission was asked: under a hold nothing is sent and the caller
waits it out as after a 429; else the request leaves within `FRESH` of a look that saw none. From the hook to
the socket nothing waits when the pool has a connection (a new one connects first).

Each script is atomic across replicas. Times are Redis's own clock (`TIME`), in milliseconds, so
replicas whose clocks disagree share one log; a test may inject a clock instead. The keys are
under one hash tag, so a Redis Cluster keeps a lane in one slot.

When Redis cannot be reached, no request is sent: replicas that each went their own way
would together exceed the vendor's limit. The call says so and asks to try again.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import anyio
import httpx2 as httpx
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from fsm_mcp.connectors.http.client import retry_after
from fsm_mcp.connectors.http.lanes import Held
from fsm_mcp.connectors.http.limits import MARGIN, Clock
from fsm_mcp.errors import VendorUnavailable

log = logging.getLogger("fsm_mcp")
Sleep = Callable[[float], Awaitable[None]]

# The time: the injected clock's (ARGV[1], ms) or Redis's.
NOW = """
local now = tonumber(ARGV[1])
if not now then local t = redis.call('TIME'); now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000 end
"""

# KEYS: hold, sent, queue. ARGV: now or '', count, window (ms), interval (ms), 1 if the caller has a place in the
# queue, a name for its entry in the log, ms the caller can wait for a hold to pass (or '' for no limit), ms an
# entry counts until its answer is told (or '': it counts from its admission).
# -> {1, 0}: go now; {2, ms}: ask again then; {0, ms, ms left of the hold}: held, ask again then (after the hold).
TURN = NOW + """
local count, window, interval = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local queue = tonumber(redis.call('GET', KEYS[3]) or '0')
local function place(at)  -- the next place in the queue at `at` or later
  local p = math.max(at, queue)
  redis.call('SET', KEYS[3], tostring(p + interval), 'PX', math.ceil(p + interval - now) + 60000)
  return p
end
local hold = tonumber(redis.call('GET', KEYS[1]) or '0')
if hold > now then
  local patience = tonumber(ARGV[7])
  if patience and hold - now > patience then return {0, '0', tostring(hold - now)} end
  return {0, tostring(place(hold) - now), tostring(hold - now)}
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[2])
if n < count and (ARGV[5] == '1' or queue <= now) then
  local pending = tonumber(ARGV[8]) or 0
  redis.call('ZADD', KEYS[2], now + pending, ARGV[6])
  redis.call('PEXPIRE', KEYS[2], math.ceil(window + pending) + 60000)
  if queue < now + interval then  -- nobody waits: the next newcomer one interval on
    redis.call('SET', KEYS[3], tostring(now + interval), 'PX', math.ceil(interval) + 60000)
  end
  return {1, '0'}
end
local room = now  -- when the log next has room: the oldest entry that keeps it full leaves the window
if n >= count then  -- (a millisecond at least, or a rounding error could have a waiter ask again at once)
  local oldest = tonumber(redis.call('ZRANGE', KEYS[2], n - count, n - count, 'WITHSCORES')[2])
  if oldest > now then  -- still waiting for its answer: ask again a little later
    room = now + math.max(1, interval / 4)
  else
    room = math.max(now + 1, oldest + window)
  end
end
if ARGV[5] == '1' then return {2, tostring(room - now)} end
return {2, tostring(place(room) - now)}
"""

# KEYS: sent. ARGV: now or '', the entry whose request was answered: it counts from now until the window has passed.
ANSWERED = NOW + """
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then redis.call('ZADD', KEYS[1], 'XX', now, ARGV[2]) end
return 1
"""

# KEYS: hold, sent, queue. ARGV: now or '', the hold (ms). A shorter hold than the one in force changes nothing;
# the queue begins again at the hold's end.
HOLD = NOW + """
local ends = now + tonumber(ARGV[2])
if ends <= tonumber(redis.call('GET', KEYS[1]) or '0') then return 0 end
local ttl = math.ceil(ends - now) + 60000
redis.call('SET', KEYS[1], tostring(ends), 'PX', ttl)
redis.call('SET', KEYS[3], tostring(ends), 'PX', ttl)
return 1
"""

# KEYS: hold, sent. ARGV: now or '', the entry admitted. -> ms left of the hold (0 if none); held, the entry leaves
# the log, its request not being sent.
LOOK = NOW + """
local hold = tonumber(redis.call('GET', KEYS[1]) or '0')
if hold <= now then return '0' end
redis.call('ZREM', KEYS[2], ARGV[2])
return tostring(hold - now)
"""


PENDING = 20.0  # seconds an entry whose answer is never told counts: past any request's timeouts
FRESH = 0.005  # seconds since its admission was asked within which a request leaves without looking again
LOOKS = 3  # looks at most: one answered later than FRESH asks again, and after the last the request goes


def window_of(rate: float, margin: float = MARGIN) -> tuple[int, float]:
    """(requests, ms) the log allows: the rate's requests a second (at least one) in a window longer than their
    share of a second by the margin, so on average `rate * margin` a second."""
    count = max(1, math.floor(rate))
    return count, 1000 * count / (rate * margin)


class RedisLane:
    def __init__(self, lanes: RedisLanes, vendor: str, tenant: str, rate: float) -> None:
        self.vendor = vendor
        self._lanes = lanes
        self._rate = rate
        base = f"{lanes.prefix}{{{vendor}:{tenant}}}:"
        self._keys = [base + "hold", base + "sent", base + "queue"]
        self._count, self._window_ms = window_of(rate)
        self._interval_ms = self._window_ms / self._count
        self._pending: float | None = None  # watched: ms an entry counts until its answer is told
        # this task's request through the lane whose answer is not told yet (a one-item list: tasks started
        # meanwhile share it, and whichever tells first tells for all)
        self._unanswered: ContextVar[list[str] | None] = ContextVar(f"unanswered:{base}", default=None)
        # and when the call that admitted it was sent (`lanes.clock()`), until the request leaves (shared alike)
        self._admitted: ContextVar[list[tuple[str, float]] | None] = ContextVar(f"admitted:{base}", default=None)

    def watch(self, http: httpx.AsyncClient) -> None:
        """Count by causality (see the module's note): `http` is the client this lane's requests go out on, and
        its answers tell the lane when each request was over."""
        if self._pending is None:
            self._pending = PENDING * 1000
            self._count, self._window_ms = window_of(self._rate, margin=1.0)
            self._interval_ms = self._window_ms / self._count

        async def leaving(_: httpx.Request) -> None:
            await self.leaving()

        async def answered(response: httpx.Response) -> None:
            if response.status_code == 429 and (asked := retry_after(response)):
                await self.hold(asked)  # first: every replica is to hold before this one spends a round trip
            await self.answered()

        http.event_hooks["request"] = [*http.event_hooks.get("request", []), leaving]
        http.event_hooks["response"] = [*http.event_hooks.get("response", []), answered]

    async def leaving(self) -> None:
        """The request this task's last turn let through is about to leave: if its admission is older than
        `FRESH`, look again, and raise `Held` (nothing is sent) if a hold has been recorded since."""
        admitted = self._admitted.get()
        if not admitted:
            return  # no turn of this lane before it (a token's exchange), or it has looked already
        entry, asked = admitted.pop()
        lanes = self._lanes
        for _ in range(LOOKS):
            if lanes.clock() - asked <= FRESH:
                return
            asked = lanes.clock()
            left = float(await self._call(lanes.look_script, keys=self._keys[:2], args=[lanes.now_ms(), entry]))
            if left > 0:
                if unanswered := self._unanswered.get():
                    unanswered.clear()  # never sent: no answer to tell
                raise Held(left / 1000)

    async def answered(self) -> None:
        """The request this task's last turn let through has its answer, or never will."""
        unanswered = self._unanswered.get()
        if not unanswered:
            return
        entry = unanswered.pop()
        with anyio.CancelScope(shield=True):  # an entry left pending keeps its slot for PENDING seconds
            try:
                await self._lanes.answered_script(keys=self._keys[1:2], args=[self._lanes.now_ms(), entry])
            except RedisError as exc:
                log.warning("could not tell Redis of %s's answer (%s)", self.vendor, type(exc).__name__)

    async def turn(self, deadline: float = math.inf) -> None:
        await self.answered()  # this task's request before, if no answer came (a lost connection): it is over now
        lanes, entry, queued = self._lanes, secrets.token_hex(8), "0"
        pending = "" if self._pending is None else self._pending
        while True:
            patience = "" if deadline == math.inf else max(0.0, (deadline - lanes.clock()) * 1000)
            asked = lanes.clock()
            answer = await self._call(lanes.turn_script, keys=self._keys, args=[
                lanes.now_ms(), self._count, self._window_ms, self._interval_ms, queued, entry, patience, pending])
            if int(answer[0]) == 1:
                if self._pending is not None:
                    self._unanswered.set([entry])
                    self._admitted.set([(entry, asked)])
                return
            wait = float(answer[1]) / 1000
            if int(answer[0]) == 0 and lanes.clock() + (left := float(answer[2]) / 1000) > deadline:
                raise Held(left)
            queued = "1"
            await lanes.sleep(wait)

    async def hold(self, seconds: float) -> None:
        try:
            await self._lanes.hold_script(keys=self._keys, args=[self._lanes.now_ms(), seconds * 1000])
        except RedisError as exc:  # the next turn fails for the same reason and sends nothing
            log.warning("could not record %s's hold in Redis (%s)", self.vendor, type(exc).__name__)

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except RedisError as exc:
            raise VendorUnavailable(
                f"fsm-mcp's shared rate limiter (Redis) could not be reached ({type(exc).__name__}), so nothing was "
                f"sent to {self.vendor}: replicas pacing themselves apart would exceed its limit. Try again in a minute."
            ) from None


class RedisLanes:
    """Lanes in the Redis at `redis`; `prefix` keeps them apart from anything else stored there. `clock` (seconds)
    and `sleep` are for tests: given a clock, the scripts take its time instead of Redis's."""

    def __init__(self, redis: aioredis.Redis, prefix: str = "fsm-mcp:lane:", clock: Clock | None = None,
                 sleep: Sleep = anyio.sleep) -> None:
        self.redis = redis
        self.prefix = prefix
        self.clock: Clock = clock or time.monotonic
        self._injected = clock is not None
        self.sleep = sleep
        self.turn_script = redis.register_script(TURN)
        self.hold_script = redis.register_script(HOLD)
        self.answered_script = redis.register_script(ANSWERED)
        self.look_script = redis.register_script(LOOK)
        self._lanes: dict[tuple[str, str], RedisLane] = {}

    @classmethod
    def from_url(cls, url: str, prefix: str = "fsm-mcp:lane:") -> RedisLanes:
        # Short timeouts: a request waits on Redis before every send, and a voice caller is waiting on the request.
        return cls(aioredis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0), prefix)

    def now_ms(self) -> str:
        return repr(self.clock() * 1000) if self._injected else ""

    def lane(self, vendor: str, tenant: str, rate: float) -> RedisLane:
        key = (vendor, tenant)
        if key not in self._lanes:
            self._lanes[key] = RedisLane(self, vendor, tenant, rate)
        return self._lanes[key]

    async def aclose(self) -> None:
        await self.redis.aclose()
