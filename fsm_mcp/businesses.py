"""What a running server holds: every business it serves over one store, each with its
settings, its backend, its idempotency guard and its confirmations. `open_businesses` builds
them for any door: the MCP server's lifespan, a command, an automation."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx2 as httpx

from fsm_mcp.access.callers import Caller
from fsm_mcp.access.confirm import Confirmations
from fsm_mcp.clock import Clock
from fsm_mcp.connectors import open_backend
from fsm_mcp.connectors.base import Backend
from fsm_mcp.connectors.http.lanes import open_lanes
from fsm_mcp.settings import Settings
from fsm_mcp.store import Store
from fsm_mcp.store.idempotency import IdempotentWriter
from fsm_mcp.store.repositories import Idempotency

log = logging.getLogger("fsm_mcp")


@dataclass(slots=True)
class ServedBusiness:
    """One business, as the services act for it."""

    settings: Settings
    db: Store
    backend: Backend
    clock: Clock
    writer: Idempotency
    confirmations: Confirmations

    @property
    def tenant(self) -> str:
        return self.settings.business.tenant_id


@dataclass(slots=True)
class ServedBusinesses:
    by_id: dict[str, ServedBusiness]
    default: str

    def of(self, caller: Caller) -> ServedBusiness:
        """The caller's business. A caller is bound to one; the gate refuses one not served here."""
        return self.by_id[caller.business or self.default]


@asynccontextmanager
async def open_businesses(every: Mapping[str, Settings], db: Store, transport: httpx.AsyncBaseTransport | None = None,
                          background: bool = True) -> AsyncIterator[ServedBusinesses]:
    """Each business's backend opened on `db` for the block (a vendor's directory kept synced in the background
    when `background`). The first business is the default one."""
    first = next(iter(every.values()))
    async with AsyncExitStack() as stack:
        lanes = open_lanes(first.redis_url, first.replicas)  # one pace and hold per (vendor, tenant) for all of them
        stack.push_async_callback(lanes.aclose)
        served = {}
        for ident, one in every.items():
            log.info("fsm-mcp serving business %r (%s backend) from %s", ident, one.backend, db.path)
            backend = await stack.enter_async_context(open_backend(one, db, transport, background, lanes))
            # The local store's writes join the idempotency transaction; a vendor's cannot.
            served[ident] = ServedBusiness(settings=one, db=db, backend=backend, clock=db.clock,
                                           writer=IdempotentWriter(db, in_transaction=one.backend == "local"),
                                           confirmations=Confirmations(db, ident))
        yield ServedBusinesses(by_id=served, default=next(iter(served)))
