"""Pacing requests to a vendor at its published rate, and a circuit breaker for a vendor
that keeps failing.

One `Pace` and one `Breaker` exist per (vendor, tenant), shared by every request the
backend sends, so concurrent tool calls and the background sync draw on one budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiolimiter import AsyncLimiter

from fsm_mcp.errors import VendorUnavailable

Clock = Callable[[], float]


MARGIN = 0.95  # of the published rate: jitter on the way cannot bunch evenly spaced requests into a 429


class Pace:
    """At most `rate` requests a second (less a small margin), evenly spaced.

    The bucket holds a single request, so requests leave at least 1/rate seconds apart: no
    burst can break a per-second limit, whichever way the vendor counts its window. (A
    429's Retry-After is honoured by the request it answered, in `client`.)
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate * MARGIN
        self._bucket = AsyncLimiter(1, 1 / self.rate)

    async def __aenter__(self) -> None:
        await self._bucket.acquire()

    async def __aexit__(self, *exc: object) -> None:
        return None


class Breaker:
    """Opens after `failures` failures in a row (5xx, timeouts, lost connections; a 429 or a
    refusal is an answer, not a failure). While open, calls fail at once without being sent;
    after `cooldown` calls go through again, the first failure reopens it and the first
    success closes it."""

    def __init__(self, vendor: str, failures: int = 5, cooldown: float = 30.0, clock: Clock = time.monotonic) -> None:
        self.vendor = vendor
        self.failures = failures
        self.cooldown = cooldown
        self._clock = clock
        self._run = 0
        self._open_until = 0.0

    def check(self) -> None:
        left = self._open_until - self._clock()
        if left > 0:
            raise VendorUnavailable(
                f"{self.vendor} failed {self._run} times in a row, so fsm-mcp stopped calling it for "
                f"{self.cooldown:.0f} s to let it recover ({left:.0f} s left); nothing was sent. Try again in a minute, "
                f"or tell the caller the booking system is down and take their details."
            )

    def succeeded(self) -> None:
        self._run = 0
        self._open_until = 0.0

    def failed(self) -> None:
        self._run += 1
        if self._run >= self.failures:
            self._open_until = self._clock() + self.cooldown
