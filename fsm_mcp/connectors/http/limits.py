"""Pacing requests to a vendor at its published rate, and a circuit breaker for a vendor
that keeps failing.

One `Pace` and one `Breaker` exist per (vendor, tenant), shared by every request the
backend sends, so concurrent tool calls and the background sync draw on one budget. A
`Pace` is the in-process half of a lane (`lanes`), which adds the vendor's 429 holds.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

import anyio

from fsm_mcp.errors import VendorUnavailable

Clock = Callable[[], float]


MARGIN = 0.95  # of the published rate: jitter on the way cannot bunch evenly spaced requests into a 429


class Pace:
    """At most `rate` requests a second (less a small margin), evenly spaced; or, given `window`, at most
    the rate's requests in any `window` seconds, as close together as `gap`.

    Each request takes the next free slot and waits for it. Evenly spaced, the slots are 1/rate apart on
    a fixed schedule that never banks idle time, so no burst can break a per-second limit whichever way
    the vendor counts its window; and a wake-up a little late does not push every later slot back, as a
    one-request leaky bucket does (aiolimiter at capacity 1 reached 44.4 of 47.5 requests/s this way; the
    schedule 47.5, never more than 48 in a second). A vendor that publishes only a limit a minute (the
    books: QuickBooks 500, Xero 60) is paced by the minute (`window` 60): a slot is free when fewer than
    the minute's share were taken in the `window` before it, so requests that queued behind a hold, or a
    few that come together, go together instead of 0.13 s (QuickBooks) or 1.05 s (Xero) apart. A slot taken
    by a caller that is then cancelled goes unused. (A 429's Retry-After holds the whole lane, in `lanes`.)
    """

    def __init__(self, rate: float, clock: Clock = time.monotonic, window: float | None = None,
                 gap: float = 0.0) -> None:
        self.rate = rate * MARGIN
        if window is None:
            self._count, self._span = 1, 1 / self.rate
        else:
            self._count, self._span = max(1, math.floor(self.rate * window)), window
        self._gap = gap
        self._clock = clock
        self._taken: deque[float] = deque()  # the slots taken in the last `_span` seconds and ahead, in order
        self._floor = -math.inf  # no slot before this (a hold's end)

    def reserve(self) -> float:
        """Take the next free slot; seconds until it comes."""
        now = self._clock()
        taken = self._taken
        while taken and taken[0] <= now - self._span:
            taken.popleft()
        slot = max(now, self._floor)
        if taken:
            slot = max(slot, taken[-1] + self._gap)
        if len(taken) >= self._count:
            slot = max(slot, taken[len(taken) - self._count] + self._span)
        taken.append(slot)
        return slot - now

    def restart(self, at: float) -> None:
        """Begin the schedule again at `at` (a hold's end): slots taken before and still to come are void (their
        callers take new ones); those already come stay counted in the window."""
        now = self._clock()
        while self._taken and self._taken[-1] > now:
            self._taken.pop()
        self._floor = at

    async def __aenter__(self) -> None:
        if (wait := self.reserve()) > 0:
            await anyio.sleep(wait)

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
