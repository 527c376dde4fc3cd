"""One vendor's API as the connectors see it: paced, authenticated, retried where a repeat
is safe, with failures told in the agent's terms.

Reads are retried on 429, 5xx, timeouts and lost connections. A write is repeated only
when a repeat cannot duplicate it: the request never left (no connection), the vendor
refused it before acting (429), or the caller's read-back (`check`) shows it was not done.
Otherwise the failure is a `WriteUncertain` that says what to check.

A 429's Retry-After (seconds or an HTTP date) or RateLimit-Reset (epoch seconds) holds the
whole (vendor, tenant) lane (`lanes`): no request of any call is sent to that tenant
before it has passed, since the vendor would refuse it again and count it. Other waits are
a capped, jittered exponential backoff. A call gives up as soon as the next wait, or the
lane's hold, would overrun its time budget, because a voice platform stops waiting after
5-20 s anyway; its error says when the vendor will take requests again.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import anyio
import httpx2 as httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_exponential_jitter

from fsm_mcp.connectors.http.auth import Auth
from fsm_mcp.connectors.http.lanes import Held, Lane, LocalLane
from fsm_mcp.connectors.http.limits import Breaker, Pace
from fsm_mcp.errors import VendorRejected, VendorUnavailable, WriteUncertain

Check = Callable[[], Awaitable[Any | None]]  # the write's result if it was done, None if it was not
Describe = Callable[[httpx.Response], str]  # a vendor's error body, summarised for the agent
Send = Callable[[float], Awaitable[Any]]  # (deadline, a time.monotonic() reading) -> the answer


@dataclass(frozen=True, slots=True)
class Policy:
    attempts: int = 6
    budget: float = 12.0  # seconds one call may spend retrying
    base: float = 0.2  # first backoff
    cap: float = 4.0  # longest backoff between two attempts (a Retry-After may ask for more)
    timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(10.0, connect=3.0, pool=5.0))


def http_client(base_url: str, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """One client per backend: pooled connections, the policy's timeouts; `transport` reaches a fake in tests."""
    return httpx.AsyncClient(base_url=base_url.rstrip("/"), transport=transport, timeout=Policy().timeout,
                             limits=httpx.Limits(max_connections=32, max_keepalive_connections=16))


class _Transient(Exception):
    """A failure worth another attempt. `sent`: the vendor may have acted on the request; `held`: it was not
    sent at all, the lane being held."""

    def __init__(self, reason: str, *, sent: bool, retry_after: float | None = None, held: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sent = sent
        self.retry_after = retry_after
        self.held = held


def retry_after(response: httpx.Response, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the vendor asked us to wait, from Retry-After or RateLimit-Reset; None if it did not say."""
    if value := response.headers.get("Retry-After"):
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - now())
            except (TypeError, ValueError):
                return None
    if value := response.headers.get("RateLimit-Reset"):
        try:
            reset = float(value)
        except ValueError:
            return None
        return max(0.0, reset - now()) if reset > 1e9 else reset  # epoch seconds, or (elsewhere) a delta
    return None


class VendorClient:
    """`lane`: the (vendor, tenant) lane from a `Lanes` (shared with every other client of that tenant), or a
    `Pace` of this client's own."""

    def __init__(
        self, vendor: str, http: httpx.AsyncClient, auth: Auth, lane: Lane | Pace, breaker: Breaker,
        policy: Policy | None = None, describe: Describe | None = None,
    ) -> None:
        self.vendor = vendor
        self.http = http
        self.auth = auth
        self.lane: Lane = LocalLane(lane) if isinstance(lane, Pace) else lane
        self.breaker = breaker
        self.policy = policy or Policy()
        self._describe = describe or (lambda r: f"HTTP {r.status_code}")

    async def get(self, path: str, params: dict[str, Any] | None = None, *, budget: float | None = None,
                  headers: dict[str, str] | None = None) -> Any:
        return await self._retrying(lambda deadline: self._once("GET", path, params, None, deadline, headers), budget,
                                    check=None, write=False)

    async def write(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
        check: Check | None = None, what: str = "the change", headers: dict[str, str] | None = None,
    ) -> Any:
        """Send a write. After an ambiguous failure, `check()` tells whether it was done: its result is
        returned if so, the write is sent again if not; without `check` the failure is `WriteUncertain`."""
        try:
            return await self._retrying(lambda deadline: self._once(method, path, params, json, deadline, headers),
                                        None, check=check, write=True)
        except _Uncertain as exc:
            happened = (f"{self.vendor} may or may not have made {what}: the request was sent and its answer was "
                        f"lost ({exc.reason}).")
            raise WriteUncertain(f"{happened} Check in {self.vendor} whether it was done before asking for it again.",
                                 happened=happened) from None

    async def _retrying(self, send: Send, budget: float | None, *, check: Check | None, write: bool) -> Any:
        policy = self.policy
        limit = policy.budget if budget is None else budget
        deadline = time.monotonic() + limit

        # Jitter of up to one base, not tenacity's default second: a first retry after a 503 within 0.2-0.4 s
        # (policy.base 0.2), not 0.2-1.2 s.
        backoff = wait_exponential_jitter(multiplier=policy.base, max=policy.cap, jitter=policy.base)

        def wait(state: RetryCallState) -> float:
            # A 429 that said how long: exactly that (the lane holds every request of the tenant until then, and
            # the vendor asks no more); a backoff on top only kept the request out past the hold.
            asked = _asked(state)
            return asked if asked else backoff(state)

        class out_of_time(stop_base):  # the next wait would overrun the budget
            def __call__(self, state: RetryCallState) -> bool:
                return wait(state) > limit - (state.seconds_since_start or 0.0)

        async def attempt() -> Any:
            try:
                return await send(deadline)
            except _Transient as exc:
                if not (write and exc.sent):
                    raise
                if check is None:
                    raise _Uncertain(exc.reason) from None
                try:
                    done = await self._retrying(lambda _: check(), limit, check=None, write=False)
                except (VendorUnavailable, VendorRejected) as failed:  # refused or down: still unknown either way
                    what = "was refused" if isinstance(failed, VendorRejected) else "failed"
                    raise _Uncertain(f"{exc.reason}, and reading back {what} too") from None
                if done is not None:
                    return done
                raise  # the read-back shows it was not done: sending again cannot duplicate it

        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_any(stop_after_attempt(policy.attempts), stop_after_delay(limit), out_of_time()),
            wait=wait,
            reraise=True,
        )
        started = time.monotonic()
        try:
            return await retrying(attempt)
        except _Transient as exc:
            tries = retrying.statistics.get("attempt_number", 1)
            spent = time.monotonic() - started
            later = f"in {_span(exc.retry_after)}, when {self.vendor} said it would take requests again" \
                if exc.retry_after and exc.retry_after > limit - spent else "in a minute"
            if exc.held and tries == 1:
                raise VendorUnavailable(
                    f"{self.vendor} is rate limiting this business and asked fsm-mcp to wait; nothing was sent"
                    f"{' and nothing was changed' if write else ''}. Try again {later}.",
                ) from None
            raise VendorUnavailable(
                f"{self.vendor} is {exc.reason}; tried {'once' if tries == 1 else f'{tries} times'} over {spent:.0f} s"
                f"{', and nothing was changed' if write else ''}. Try again {later}.",
            ) from None

    async def _once(self, method: str, path: str, params: dict[str, Any] | None, body: Any, deadline: float,
                    extra: dict[str, str] | None = None) -> Any:
        response = await self._send(method, path, params, body, deadline, extra)
        if response.status_code == 401:
            raise VendorRejected(
                f"{self.vendor} refused fsm-mcp's credentials (HTTP 401); the business's administrator must check "
                "them (fsm-mcp check tells which setting)", status=401,
            )
        if response.status_code == 429:
            self.breaker.succeeded()  # a refusal is an answer: the vendor is up
            asked = retry_after(response)  # the lane is held already (`_send`)
            said = self._describe(response)
            raise _Transient(f"rate limiting ({said})" if said != f"HTTP {response.status_code}" else "rate limiting",
                             sent=False, retry_after=asked)
        if response.status_code >= 500 or response.status_code == 408:
            self.breaker.failed()
            raise _Transient(f"failing (HTTP {response.status_code})", sent=True, retry_after=retry_after(response))
        self.breaker.succeeded()
        if response.status_code >= 400:
            raise VendorRejected(f"{self.vendor} refused the request: {self._describe(response)}",
                                 status=response.status_code)
        return response.json() if response.content else None

    async def _send(self, method: str, path: str, params: dict[str, Any] | None, body: Any,
                    deadline: float, extra: dict[str, str] | None = None) -> httpx.Response:
        self.breaker.check()
        renewed = False
        while True:
            headers = await self.auth.headers()
            sent = {**headers, **extra} if extra else headers  # a request's own (an idempotency key)
            try:
                await self.lane.turn(deadline)
            except Held as held:  # the tenant is held past this call's budget: say when, send nothing
                raise _Transient("rate limiting", sent=False, retry_after=held.seconds, held=True) from None
            got_answer = getattr(self.lane, "got_answer", None)  # a lane that waits for answers before the next send
            try:
                # Once sent, a request is seen through even if its caller is cancelled (a sibling read failed):
                # its answer may be a 429 whose hold every other request of the lane must honour.
                with anyio.CancelScope(shield=True):
                    response = await self.http.request(method, path, params=_clean(params), json=body,
                                                       headers=sent, timeout=self.policy.timeout)
                if response.status_code == 429 and (asked := retry_after(response)):
                    await self.lane.hold(asked)  # before this task yields: the lane is held before anyone else goes
            except Held as held:  # a lane's last look before the request left found a hold begun since its turn
                raise _Transient("rate limiting", sent=False, retry_after=held.seconds, held=True) from None
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                self.breaker.failed()
                raise _Transient(f"unreachable ({type(exc).__name__})", sent=False) from None
            except httpx.TransportError as exc:  # the request left; whether it arrived is unknown
                self.breaker.failed()
                raise _Transient(f"not answering ({type(exc).__name__})", sent=True) from None
            finally:
                if got_answer is not None:
                    got_answer()
            if response.status_code != 401 or renewed or not await self.auth.renew(headers):
                return response
            renewed = True


def _span(seconds: float) -> str:
    """A wait in the largest unit that reads naturally: '40 s', '12 minutes', '3 hours', '9 days'."""
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _asked(state: RetryCallState) -> float | None:
    exc = state.outcome.exception() if state.outcome else None
    return exc.retry_after if isinstance(exc, _Transient) else None


class _Uncertain(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _clean(params: dict[str, Any] | None) -> dict[str, Any] | None:
    """Query parameters without the unset ones, booleans as the vendors spell them."""
    if params is None:
        return None
    return {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items() if v is not None}
