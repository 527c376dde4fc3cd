"""The books' HTTP clients on the vendors' kit: the business's grant, its company's lane (the published
requests a minute, shared by every replica when Redis is configured, and each 429's hold), and a cap on
requests in flight per company (QuickBooks 10, Xero 5)."""

from __future__ import annotations

import hashlib
from typing import Any

import anyio
import httpx2 as httpx

from fsm_mcp.accounting.oauth import Grant, Sealer
from fsm_mcp.accounting.settings import AccountingSettings
from fsm_mcp.connectors.http.client import Describe, Policy, VendorClient
from fsm_mcp.connectors.http.lanes import Lanes, LocalLanes
from fsm_mcp.connectors.http.limits import Breaker
from fsm_mcp.store import Store

# Posting runs in the background, not inside a caller's call: it may wait out a few holds.
POLICY = Policy(attempts=12, budget=60.0, base=0.2, cap=4.0)


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


def idempotency_key(kind: str, tenant: str, our_id: str, longest: int) -> str:
    """The vendor's idempotency key for making our `kind` record `our_id` there: the same every time, so a
    repeat after a crash or a lost answer gets the first answer back; a digest when the plain form is too long."""
    plain = f"fsm-{kind}-{our_id}"
    if len(plain) <= longest:
        return plain
    return f"fsm-{kind}-{hashlib.sha256(f'{tenant}:{our_id}'.encode()).hexdigest()}"[:longest]


def open_client(vendor: str, provider: str, db: Store, tenant: str, settings: AccountingSettings, describe: Describe,
                transport: httpx.AsyncBaseTransport | None = None, lanes: Lanes | None = None,
                extra: dict[str, str] | None = None, replicas: int = 1) -> tuple[VendorClient, Grant, Bounded]:
    bounded = Bounded(transport or httpx.AsyncHTTPTransport(), max(1, settings.at_once // replicas))
    http = httpx.AsyncClient(base_url=settings.api_url.rstrip("/"), transport=bounded, timeout=POLICY.timeout,
                             limits=httpx.Limits(max_connections=32, max_keepalive_connections=16))
    grant = Grant(db, tenant, provider, vendor, http, settings.token_url, settings.client_id, settings.client_secret,
                  Sealer(settings.token_key), extra)
    lane = (lanes or LocalLanes()).lane(vendor, settings.company, settings.rate)
    return VendorClient(vendor, http, grant, lane, Breaker(vendor, failures=8, cooldown=10.0), POLICY, describe), grant, bounded


def first(items: Any) -> Any:
    return items[0] if isinstance(items, list) and items else None
