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

import math
import time
from typing import Protocol

import anyio

from fsm_mcp.connectors.http.limits import Clock, Pace


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
    """A lane kept in this process: a `Pace` and the end of the current hold."""

    def __init__(self, pace: Pace, clock: Clock = time.monotonic) -> None:
        self.pace = pace
        self._clock = clock
        self._until = -math.inf
        self._era = 0  # counts holds: a slot taken in an earlier era is void

    async def turn(self, deadline: float = math.inf) -> None:
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
            if era == self._era:
                return

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

    def lane(self, vendor: str, tenant: str, rate: float, window: float | None = None, gap: float = 0.0) -> LocalLane:
        """`window`, `gap`: a vendor that counts its limit over `window` seconds (see `Pace`)."""
        key = (vendor, tenant)
        if key not in self._lanes:
            self._lanes[key] = LocalLane(Pace(rate * self._share, self._clock, window, gap), self._clock)
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
