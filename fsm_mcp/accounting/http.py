"""The books' HTTP clients on the vendors' kit: the business's grant, its company's lane (the published
requests a minute, shared by every replica when Redis is configured, and each 429's hold; Xero's requests a
day counted in the store by every replica), and a cap on requests in flight per company (QuickBooks 10,
Xero 5)."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import anyio
import httpx2 as httpx

from fsm_mcp.accounting.oauth import Grant, Sealer
from fsm_mcp.accounting.settings import AccountingSettings
from fsm_mcp.connectors.http.client import Describe, Policy, VendorClient
from fsm_mcp.connectors.http.lanes import Lane, Lanes, LocalLanes
from fsm_mcp.connectors.http.limits import Breaker
from fsm_mcp.errors import VendorUnavailable
from fsm_mcp.store import Store
from fsm_mcp.store import accounting as sql

# Posting runs in the background, not inside a caller's call: it may wait out a few holds.
POLICY = Policy(attempts=12, budget=60.0, base=0.2, cap=4.0)
# The least time between two sends to a company. Requests sent in the same instant are all on their way when a
# 429 answers one of them, and reach the vendor inside its hold; a few ms apart, those that queued behind a hold
# still go within a fraction of a second, but the hold's next 429 stops the rest.
GAP = 0.02


class Bounded(httpx.AsyncBaseTransport):
    """At most `at_once` requests of this client in flight (each counted until its answer is read)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, at_once: int) -> None:
        self.inner = inner
        self.slots = anyio.CapacityLimiter(at_once)
        self.most = 0  # the most ever in flight, for tests

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        async with self.slots:
            self.most = max(self.most, int(self.slots.borrowed_tokens))
            response = await self.inner.handle_async_request(request)
            await response.aread()
            return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class DayLimitReached(VendorUnavailable):
    """The company's requests for the day are used up (counted by every replica in the store); nothing was sent."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message, status=429)
        self.seconds = seconds


class DailyLane:
    """A lane that also keeps a company's requests a day (Xero: 5,000 per organisation) across every replica: each
    request is counted in the store before it is sent, by the hour, over the last 24 hours and the one under way
    (the vendor's window rolls; counting whole hours can only count too many, never too few). Past the limit
    `turn` refuses at once, saying when a request may go again."""

    def __init__(self, inner: Lane, db: Store, vendor: str, provider: str, company: str, per_day: int) -> None:
        self.inner, self.db, self.vendor, self.provider, self.company = inner, db, vendor, provider, company
        self.per_day = per_day

    async def turn(self, deadline: float = math.inf) -> None:
        await self.inner.turn(deadline)
        now = self.db.clock.now().timestamp()
        hour = int(now // 3600)
        try:
            used = await self.db.awrite(sql.take_call, self.provider, self.company, hour, hour - 24, self.per_day)
        except BaseException:
            self.got_answer()  # nothing goes
            raise
        if used >= self.per_day:
            self.got_answer()
            seconds = await self._until_free(now, hour)
            raise DayLimitReached(
                f"{self.vendor}'s limit of {self.per_day:,} requests a day for this organisation is used up; "
                f"nothing was sent. Try again in {_span(seconds)}.", seconds)

    async def _until_free(self, now: float, hour: int) -> float:
        """Seconds until enough of the counted hours have passed out of the window for one more request."""
        counted = await self.db.aread(sql.calls_by_hour, self.provider, self.company, hour - 24)
        left = sum(n for _, n in counted)
        for when, n in counted:
            left -= n
            if left < self.per_day:
                return max(1.0, (when + 25) * 3600 - now)
        return 3600.0

    async def hold(self, seconds: float) -> None:
        await self.inner.hold(seconds)

    def got_answer(self) -> None:
        if (inner := getattr(self.inner, "got_answer", None)) is not None:
            inner()


def _span(seconds: float) -> str:
    if seconds >= 5400:
        return f"{seconds / 3600:.0f} hours"
    return f"{max(1, round(seconds / 60))} minutes"


def idempotency_key(kind: str, tenant: str, our_id: str, longest: int) -> str:
    """The vendor's idempotency key for making our `kind` record `our_id` there: the same every time, so a
    repeat after a crash or a lost answer gets the first answer back; a digest when the plain form is too long."""
    plain = f"fsm-{kind}-{our_id}"
    if len(plain) <= longest:
        return plain
    return f"fsm-{kind}-{hashlib.sha256(f'{tenant}:{our_id}'.encode()).hexdigest()}"[:longest]


def open_client(vendor: str, provider: str, db: Store, tenant: str, settings: AccountingSettings, describe: Describe,
                transport: httpx.AsyncBaseTransport | None = None, lanes: Lanes | None = None,
                extra: dict[str, str] | None = None, replicas: int = 1,
                per_day: int | None = None) -> tuple[VendorClient, Grant, Bounded]:
    bounded = Bounded(transport or httpx.AsyncHTTPTransport(), max(1, settings.at_once // replicas))
    http = httpx.AsyncClient(base_url=settings.api_url.rstrip("/"), transport=bounded, timeout=POLICY.timeout,
                             limits=httpx.Limits(max_connections=32, max_keepalive_connections=16))
    grant = Grant(db, tenant, provider, vendor, http, settings.token_url, settings.client_id, settings.client_secret,
                  Sealer(settings.token_key), extra)
    lane = company_lane(lanes, vendor, settings.company, settings.rate)
    if per_day is not None:
        lane = DailyLane(lane, db, vendor, provider, settings.company, per_day)
    return VendorClient(vendor, http, grant, lane, Breaker(vendor, failures=8, cooldown=10.0), POLICY, describe), grant, bounded


def company_lane(lanes: Lanes | None, vendor: str, company: str, rate: float) -> Lane:
    """The company's lane. Both vendors publish a limit a minute and none a second, so this process's lanes pace
    by the minute, sends at least GAP apart, the oldest invoice's requests first. Redis's lanes (several replicas) keep their even schedule, one slot
    every 1/rate s: stricter than the vendors ask, never more."""
    if lanes is None or isinstance(lanes, LocalLanes):
        return (lanes or LocalLanes()).lane(vendor, company, rate, window=60.0, gap=GAP, ordered=True)
    return lanes.lane(vendor, company, rate)


def first(items: Any) -> Any:
    return items[0] if isinstance(items, list) and items else None
