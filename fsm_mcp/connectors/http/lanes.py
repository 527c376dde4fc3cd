"""Lanes: the pace and the 429 holds of one (vendor, tenant), shared by every request sent to it.

A vendor throttles a tenant, not a request: after a 429 whose Retry-After (or
RateLimit-Reset) says to wait, every request to that tenant sent before the time has
passed is refused again and counts against the tenant's budget. So a 429 holds the whole
lane: no request of any caller takes its turn until the hold has passed, and the slots
of the pace taken before the hold are void (the schedule begins again at its end, so the
queue resumes at the published rate rather than all at once).

`LocalLanes` keeps the lanes of one process. `RedisLanes` (`redis_lanes.py`, when
`FSM_MCP_REDIS_URL` is set) keeps them in Redis, so several replicas share one pace and
one hold per lane; `open_lanes` picks one. Without Redis, replicas cannot see each other's
requests, so each paces at its share of the published rate (`FSM_MCP_REPLICAS`, default 1):
the rate is kept at the price of a little idle budget, and no replica needs another to start.
A 429 is still held by every replica that gets one.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from contextvars import ContextVar
from typing import Any, Protocol

import anyio
import anyio.lowlevel

from fsm_mcp.connectors.http.limits import Clock, Pace

# When the work a request is part of began, on the lane's clock (time.monotonic() unless injected): a lane that
# orders its waiters lets the oldest work go first (a retry keeps its place; unset, a request is as old as its
# turn). The books set it to the invoice's creation.
since: ContextVar[float | None] = ContextVar("since", default=None)


class Held(Exception):
    """The lane is held past the caller's deadline: nothing was sent."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"held for {seconds:.1f} s")
        self.seconds = seconds


class Lane(Protocol):
    async def turn(self, deadline: float = math.inf) -> None:
        """Wait for this request's turn: past any hold, then to its slot of the pace. Raises `Held` at once
        when the hold ends after `deadline` (a `time.monotonic()` reading)."""
        ...

    async def hold(self, seconds: float) -> None:
        """The vendor said to wait `seconds`: no request of this lane is sent before they have passed."""
        ...


class Lanes(Protocol):
    def lane(self, vendor: str, tenant: str, rate: float) -> Lane:
        """The lane of (vendor, tenant), paced at `rate` requests a second (the published limit)."""
        ...

    async def aclose(self) -> None: ...


class LocalLane:
    """A lane kept in this process: a `Pace` and the end of the current hold. `ordered`: waiters take their
    turns oldest work first (by `since`), not in the order they asked, one at a time, and each goes when the
    answers to those before it are in (`got_answer`) or an even pace's slot after the last went, whichever is
    first: a burst after a hold goes as fast as the vendor answers, and none is on its way when a 429 comes
    back, however slow this process is to read it."""

    def __init__(self, pace: Pace, clock: Clock = time.monotonic, ordered: bool = False) -> None:
        self.pace = pace
        self._clock = clock
        self._until = -math.inf
        self._era = 0  # counts holds: a slot taken in an earlier era is void
        self._ordered = ordered
        self._waiting: list[list[Any]] = []  # heap of [since, number, woken] of the requests waiting their turn
        self._numbers = itertools.count()
        self._taking = False  # a request is in `_turn`
        self._out = 0  # requests sent whose answers are not in yet (an ordered lane)
        self._last = -math.inf  # when the last was sent
        self._answer = anyio.Event()

    async def turn(self, deadline: float = math.inf) -> None:
        if not self._ordered:
            return await self._turn(deadline)
        while (left := self._until - (now := self._clock())) > 0:  # a hold is waited out first, in no order
            if now + left > deadline:
                raise Held(left)
            await anyio.sleep(left)
        began = since.get()
        entry: list[Any] = [now if began is None else began, next(self._numbers), anyio.Event()]
        heapq.heappush(self._waiting, entry)
        try:
            await anyio.lowlevel.checkpoint()  # those woken with it by the hold's end are in the queue too
            while self._taking or self._waiting[0] is not entry:
                entry[2] = anyio.Event()
                await entry[2].wait()
        except BaseException:
            self._waiting.remove(entry)
            heapq.heapify(self._waiting)
            self._next()
            raise
        heapq.heappop(self._waiting)
        self._taking = True
        try:
            await self._turn(deadline)
        finally:
            self._taking = False
            self._next()

    def _next(self) -> None:
        if not self._taking and self._waiting:
            self._waiting[0][2].set()

    async def _turn(self, deadline: float) -> None:
        while True:
            now = self._clock()
            if (left := self._until - now) > 0:
                if now + left > deadline:
                    raise Held(left)
                await anyio.sleep(left)
                continue
            era = self._era
            if (wait := self.pace.reserve()) > 0:
                await anyio.sleep(wait)
            if era != self._era:
                continue
            if self._ordered:  # the answers on their way first (one may be a 429), or one slot of the even pace
                while self._out and (left := self._last + 1 / self.pace.rate - self._clock()) > 0:
                    with anyio.move_on_after(left):
                        await self._answer.wait()
                if era != self._era:
                    continue
                self._out += 1
                self._last = self._clock()
            return

    def got_answer(self) -> None:
        """The answer to a request sent on this lane is in (and a 429's hold recorded): in an ordered lane, the
        next request may go."""
        if self._ordered:
            self._out = max(0, self._out - 1)
            self._answer.set()
            self._answer = anyio.Event()

    async def hold(self, seconds: float) -> None:
        until = self._clock() + seconds
        if until > self._until:
            self._until = until
            self._era += 1
            self.pace.restart(until)

    def held(self) -> float:
        """Seconds left of the current hold (0 when none)."""
        return max(0.0, self._until - self._clock())


class LocalLanes:
    """The lanes of one process: every backend and caller of a (vendor, tenant) gets the same one."""

    def __init__(self, clock: Clock = time.monotonic, replicas: int = 1) -> None:
        self._clock = clock
        self._share = 1 / replicas  # of each lane's published rate, for this process
        self._lanes: dict[tuple[str, str], LocalLane] = {}

    def lane(self, vendor: str, tenant: str, rate: float, window: float | None = None, gap: float = 0.0,
             ordered: bool = False) -> LocalLane:
        """`window`, `gap`: a vendor that counts its limit over `window` seconds (see `Pace`); `ordered`: oldest
        work first (see `LocalLane`)."""
        key = (vendor, tenant)
        if key not in self._lanes:
            self._lanes[key] = LocalLane(Pace(rate * self._share, self._clock, window, gap), self._clock, ordered)
        return self._lanes[key]

    async def aclose(self) -> None:
        return None


def open_lanes(redis_url: str | None, replicas: int = 1) -> Lanes:
    """Redis's lanes when a URL is given (several replicas share them), else this process's own, paced at its
    share of the rate when `replicas` processes serve the same businesses."""
    if not redis_url:
        return LocalLanes(replicas=replicas)
    from fsm_mcp.connectors.http.redis_lanes import RedisLanes

    return RedisLanes.from_url(redis_url)
