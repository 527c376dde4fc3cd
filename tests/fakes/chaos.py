"""What every fake vendor does around its routes: latency, the published rate limit with the
vendor's own 429 headers, injected failures, and a record of every exchange (for the
contract test and the benchmarks)."""

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

GRACE = 0.05  # seconds for a 429 to reach the client on loopback


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
    at: float
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int
    answer: Any


class Door:
    """Counts, throttles and breaks requests before a fake's routes see them."""

    def __init__(self, chaos: Chaos, throttled: Any, unavailable: Any = None) -> None:
        self.chaos = chaos
        self.throttled = throttled  # (seconds to wait) -> Response, in the vendor's own shape
        self.unavailable = unavailable or (lambda: JSONResponse(
            {"type": "unavailable", "title": "Service Unavailable", "status": 503}, status_code=503))
        self.recent: deque[float] = deque()
        self.log: list[Exchange] = []
        self.too_early: list[tuple[float, str, str]] = []  # a request sent again before its 429's Retry-After had passed
        self.held: dict[tuple[str, str, bytes], tuple[float, float]] = {}  # request -> (known from, Retry-After ends)
        self.count_429 = 0
        self.keep_bodies = True  # the contract test reads them; a long benchmark need not hold them

    async def before(self, request: Request, write: bool) -> Response | None:
        chaos = self.chaos
        now = time.monotonic()
        # The same request again (method, URL, body) is the retry of one answered 429, or another call sending
        # the same request. Only one arriving after the 429 could have reached the client (GRACE later) counts:
        # an identical request already on its way when the 429 left was sent before anyone knew of it.
        signature = (request.method, str(request.url), await request.body())
        known, until = self.held.get(signature, (0.0, 0.0))
        if known < now < until:
            self.too_early.append((until - now, signature[0], signature[1]))
        if now >= until:
            self.held.pop(signature, None)
        if chaos.latency:
            await anyio.sleep(chaos.latency)
        if chaos.rate is not None:
            while self.recent and self.recent[0] <= now - 1.0:
                self.recent.popleft()
            if len(self.recent) >= chaos.rate:
                return self._throttle(signature, 1.0)
            self.recent.append(now)
        if chaos.p429 and chaos.rng.random() < chaos.p429:
            return self._throttle(signature, float(chaos.retry_after))
        if chaos.p503 and chaos.rng.random() < chaos.p503:
            return self.unavailable()  # type: ignore[no-any-return]
        return None

    def lose_answer(self, write: bool) -> bool:
        return write and self.chaos.p_lost > 0 and self.chaos.rng.random() < self.chaos.p_lost

    def _throttle(self, signature: tuple[str, str, bytes], seconds: float) -> Response:
        self.count_429 += 1
        now = time.monotonic()
        self.held[signature] = (now + GRACE, now + seconds)
        return self.throttled(seconds)

    async def record(self, request: Request, response: Response) -> None:
        body = await request.body() if self.keep_bodies else b""
        answer = getattr(response, "body", b"") if self.keep_bodies else b""
        self.log.append(Exchange(
            at=time.monotonic(), method=request.method, path=request.url.path, query=dict(request.query_params),
            body=json.loads(body) if body else None, status=response.status_code,
            answer=json.loads(answer) if answer else None,
        ))
