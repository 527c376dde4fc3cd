"""The limits a vendor publishes per tenant (a QuickBooks realm, a Xero organisation, a
ServiceTitan tenant, a FieldPulse key): calls a minute, calls a day, calls at once. A refusal
names the limit hit and how long to wait; every 429 a fake gives (here or from chaos) opens a
hold on that tenant until its Retry-After has passed (`Holds`), and each request that arrives
inside a hold is counted, whichever request it is: a client that holds the whole tenant, as the
vendor does, sends none."""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

MINUTE, DAY = 60.0, 86_400.0
GRACE = 0.05  # seconds for a 429 to reach the client on loopback


class Holds:
    """The 429 holds on each tenant, and the requests that arrived inside one."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.spans: dict[str, tuple[float, float]] = {}  # tenant -> (counted from, ends)
        self.inside: dict[str, int] = defaultdict(int)

    def hold(self, tenant: str, seconds: float) -> None:
        """A 429 left for `tenant` saying to wait `seconds`. Requests already on their way when it left
        (within GRACE) could not have known of it and are not counted."""
        now = self.now()
        start, end = self.spans.get(tenant, (0.0, 0.0))
        self.spans[tenant] = (min(start, now + GRACE) if end > now else now + GRACE, max(end, now + seconds))

    def arrived(self, tenant: str) -> float:
        """A request for `tenant` came in: seconds left of the hold it is inside (0 if none), counted unless it
        was on its way before the 429 could have reached the client."""
        now = self.now()
        start, end = self.spans.get(tenant, (0.0, 0.0))
        if start < now < end:
            self.inside[tenant] += 1
        return max(0.0, end - now)


@dataclass(frozen=True)
class Refusal:
    problem: str  # "minute", "day" or "concurrent": Xero's X-Rate-Limit-Problem words
    retry_after: int  # whole seconds, as Retry-After carries them


class TenantLimits:
    def __init__(self, now: Callable[[], float], per_minute: int, at_once: int, per_day: int | None = None) -> None:
        self.now = now  # seconds, monotonic: the fake's clock, which a test may move forward
        self.per_minute, self.at_once, self.per_day = per_minute, at_once, per_day
        self.minute: dict[str, deque[float]] = defaultdict(deque)
        self.day: dict[str, deque[float]] = defaultdict(deque)
        self.busy: dict[str, int] = defaultdict(int)
        self.holds = Holds(now)
        self.inside_hold = self.holds.inside  # requests that came in while a hold was on
        self.refused: dict[str, int] = defaultdict(int)

    def admit(self, tenant: str) -> Refusal | None:
        """Let a request in (it then counts as running until `done`), or say which limit it hit."""
        now = self.now()
        self.holds.arrived(tenant)
        refusal = self._limit(tenant, now)
        if refusal is not None:
            self.refused[tenant] += 1
            self.hold(tenant, refusal.retry_after)
            return refusal
        self.minute[tenant].append(now)
        if self.per_day is not None:
            self.day[tenant].append(now)
        self.busy[tenant] += 1
        return None

    def done(self, tenant: str) -> None:
        self.busy[tenant] -= 1

    def hold(self, tenant: str, seconds: float) -> None:
        self.holds.hold(tenant, seconds)

    def remaining(self, tenant: str) -> tuple[int, int | None]:
        """Calls left this minute and (where there is a daily limit) today."""
        now = self.now()
        minute = self._window(self.minute[tenant], now, MINUTE)
        day = None if self.per_day is None else self.per_day - self._window(self.day[tenant], now, DAY)
        return self.per_minute - minute, day

    def _limit(self, tenant: str, now: float) -> Refusal | None:
        if self.busy[tenant] >= self.at_once:
            return Refusal("concurrent", 1)
        if self.per_day is not None and self._window(self.day[tenant], now, DAY) >= self.per_day:
            return Refusal("day", wait(self.day[tenant][0] + DAY - now))
        if self._window(self.minute[tenant], now, MINUTE) >= self.per_minute:
            return Refusal("minute", wait(self.minute[tenant][0] + MINUTE - now))
        return None

    @staticmethod
    def _window(calls: deque[float], now: float, span: float) -> int:
        while calls and calls[0] <= now - span:
            calls.popleft()
        return len(calls)


def wait(seconds: float) -> int:
    return max(1, math.ceil(seconds))
