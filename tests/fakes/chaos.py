"""What every fake vendor does around its routes: latency, the published rate limit with the
vendor's own 429 headers, injected failures, and a record of every exchange (for the
contract test and the benchmarks).

The rate (`Chaos.rate`) is counted as strictly as a published "N requests a second" can be read:
over every sliding second of arrival times (which holds any calendar second too), and every
request that reaches the tenant counts, the ones refused included. ServiceTitan publishes
about 60 a second per app per tenant and says no more of how it counts; a fake serves one
tenant to one app key (others are refused 401 before the door), so the door is that count.

Given `holds`, a door throttles the tenant as ServiceTitan and FieldPulse do, not the request:
after a 429, every request that arrives before its wait has passed is refused again, counts
against the rate, and is counted in `holds.inside` (`too_early` lists them)."""

from __future__ import annotations

import json
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes.tenant_limits import GRACE, Holds

__all__ = ["GRACE", "Chaos", "Door", "Exchange"]
TENANT = ""  # a door with holds serves one tenant


@dataclass
class Chaos:
    latency: float = 0.0  # seconds added to every answer
    rate: float | None = None  # requests/s the vendor allows; beyond it, 429
    p429: float = 0.0  # share of calls answered 429 regardless of rate
    p503: float = 0.0  # share of calls answered 503 without acting
    p_lost: float = 0.0  # share of writes done, then answered 504 (the answer lost on the way back)
    retry_after: str = "1"  # what a 429 says to wait
    seed: int = 7
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)


@dataclass
class Exchange:
    at: float  # when answered
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int
    answer: Any
    arrived: float = 0.0  # when the door saw it: the time the rate is counted by


class Door:
    """Counts, throttles and breaks requests before a fake's routes see them. `hold_tenant`: a request inside a
    429's wait is refused again (ServiceTitan, FieldPulse); either way it is counted."""

    def __init__(self, chaos: Chaos, throttled: Any, unavailable: Any = None, hold_tenant: bool = False) -> None:
        self.chaos = chaos
        self.throttled = throttled  # (seconds to wait) -> Response, in the vendor's own shape
        self.unavailable = unavailable or (lambda: JSONResponse(
            {"type": "unavailable", "title": "Service Unavailable", "status": 503}, status_code=503))
        self.hold_tenant = hold_tenant
        self.recent: deque[float] = deque()
        self.log: list[Exchange] = []
        self.holds = Holds(time.monotonic)
        self.too_early: list[tuple[float, str, str]] = []  # (seconds of the hold left, method, URL) of each counted
        self.count_429 = 0
        self.keep_bodies = True  # the contract test reads them; a long benchmark need not hold them

    @property
    def inside_hold(self) -> int:
        """Requests that arrived inside a hold, later than a 429 could have reached the client (GRACE)."""
        return self.holds.inside[TENANT]

    async def before(self, request: Request, write: bool) -> Response | None:
        chaos = self.chaos
        now = time.monotonic()
        request.state.arrived = now
        counted = self.holds.inside[TENANT]
        left = self.holds.arrived(TENANT)
        if self.holds.inside[TENANT] > counted:
            self.too_early.append((left, request.method, str(request.url)))
        if chaos.latency:
            await anyio.sleep(chaos.latency)
        if chaos.rate is not None:
            while self.recent and self.recent[0] <= now - 1.0:
                self.recent.popleft()
            over = len(self.recent) >= chaos.rate
            self.recent.append(now)  # a request refused, for the rate or inside a hold, counts against the rate too
            if over:
                return self._throttle(1.0)
        if self.hold_tenant and left > 0:
            self.count_429 += 1
            return self.throttled(left)  # type: ignore[no-any-return]
        if chaos.p429 and chaos.rng.random() < chaos.p429:
            return self._throttle(float(chaos.retry_after))
        if chaos.p503 and chaos.rng.random() < chaos.p503:
            return self.unavailable()  # type: ignore[no-any-return]
        return None

    def lose_answer(self, write: bool) -> bool:
        return write and self.chaos.p_lost > 0 and self.chaos.rng.random() < self.chaos.p_lost

    def _throttle(self, seconds: float) -> Response:
        self.count_429 += 1
        self.holds.hold(TENANT, seconds)
        return self.throttled(seconds)  # type: ignore[no-any-return]

    async def record(self, request: Request, response: Response) -> None:
        body = await request.body() if self.keep_bodies else b""
        answer = getattr(response, "body", b"") if self.keep_bodies else b""
        at = time.monotonic()
        self.log.append(Exchange(
            at=at, method=request.method, path=request.url.path, query=dict(request.query_params),
            body=json.loads(body) if body else None, status=response.status_code,
            answer=json.loads(answer) if answer else None, arrived=getattr(request.state, "arrived", at),
        ))
