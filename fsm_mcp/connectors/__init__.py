"""Backends behind the tools: `local` (the embedded store, the default) and the vendor
connectors. `open_backend` builds the configured one for a server's lifetime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import httpx2 as httpx

from fsm_mcp.errors import FsmError
from fsm_mcp.store.db import Database

if TYPE_CHECKING:
    from fsm_mcp.connectors.base import Backend
    from fsm_mcp.connectors.vendor import VendorBackend
    from fsm_mcp.settings import Settings

log = logging.getLogger("fsm_mcp")


@asynccontextmanager
async def open_backend(settings: Settings, db: Database, transport: httpx.AsyncBaseTransport | None = None,
                       background: bool = True) -> AsyncIterator[Backend]:
    """The configured backend; a vendor's keeps its customer directory synced in the background
    (every `sync_interval` seconds) while the server runs."""
    backend: VendorBackend
    if settings.backend == "servicetitan" and settings.servicetitan is not None:
        from fsm_mcp.connectors.servicetitan.backend import ServiceTitanBackend

        backend = ServiceTitanBackend.open(db, settings.business, settings.servicetitan, transport)
        interval = settings.servicetitan.sync_interval
    elif settings.backend == "fieldpulse" and settings.fieldpulse is not None:
        from fsm_mcp.connectors.fieldpulse.backend import FieldPulseBackend

        backend = FieldPulseBackend.open(db, settings.business, settings.fieldpulse, transport)
        interval = settings.fieldpulse.sync_interval
    else:
        from fsm_mcp.connectors.local import LocalBackend

        yield LocalBackend(db, settings.business)
        return
    try:
        async with anyio.create_task_group() as tg:
            if background and interval > 0:
                tg.start_soon(_keep_synced, backend, interval)
            yield backend
            tg.cancel_scope.cancel()
    finally:
        await backend.aclose()


async def _keep_synced(backend: VendorBackend, interval: float) -> None:
    while True:
        try:
            report = await backend.sync.run()
            log.info("directory sync from %s: %s", backend.vendor, report.stored)
        except FsmError as exc:  # the vendor is down or refusing: lookups go on from the directory as it is
            log.warning("directory sync from %s failed: %s; trying again in %.0f s", backend.vendor, exc, interval)
        await anyio.sleep(interval)
