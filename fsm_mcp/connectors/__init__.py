"""Backends behind the tools: `local` (the embedded store, the default) and the vendor
connectors. `open_backend` builds the configured one for a server's lifetime; a vendor's directory is
kept synced in the background by one replica at a time (a lease in the store)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

import anyio
import httpx2 as httpx

from fsm_mcp.connectors.http.lanes import Lanes, open_lanes
from fsm_mcp.errors import FsmError
from fsm_mcp.store import Store
from fsm_mcp.store.leases import Lease

if TYPE_CHECKING:
    from fsm_mcp.connectors.base import Backend
    from fsm_mcp.connectors.sync import Report as SyncReport
    from fsm_mcp.connectors.vendor import VendorBackend
    from fsm_mcp.settings import Settings

log = logging.getLogger("fsm_mcp")
QUICK_GAP = 1.0  # seconds at least between quick polls (a webhook's catch-up), and a burst's time to gather


@asynccontextmanager
async def open_backend(settings: Settings, db: Store, transport: httpx.AsyncBaseTransport | None = None,
                       background: bool = True, lanes: Lanes | None = None) -> AsyncIterator[Backend]:
    """The configured backend; a vendor's keeps its customer directory synced in the background
    (every `sync_interval` seconds) while the server runs. `lanes`: the pace and 429 holds it shares with every
    other backend of the process (or, over Redis, of every replica); without, it opens its own from the settings
    (a command such as `fsm-mcp sync` then shares Redis's lanes with the running servers)."""
    if settings.backend == "local":
        from fsm_mcp.connectors.local import LocalBackend

        yield LocalBackend(db, settings.business)
        return
    async with AsyncExitStack() as stack:
        if lanes is None:
            lanes = open_lanes(settings.redis_url, settings.replicas)
            stack.push_async_callback(lanes.aclose)
        async with _vendor(settings, db, transport, background, lanes) as backend:
            yield backend


@asynccontextmanager
async def _vendor(settings: Settings, db: Store, transport: httpx.AsyncBaseTransport | None, background: bool,
                  lanes: Lanes) -> AsyncIterator[Backend]:
    backend: VendorBackend
    if settings.backend == "servicetitan" and settings.servicetitan is not None:
        from fsm_mcp.connectors.servicetitan.backend import ServiceTitanBackend

        backend = ServiceTitanBackend.open(db, settings.business, settings.servicetitan, transport, lanes)
        interval = settings.servicetitan.sync_interval
    elif settings.backend == "fieldpulse" and settings.fieldpulse is not None:
        from fsm_mcp.connectors.fieldpulse.backend import FieldPulseBackend

        backend = FieldPulseBackend.open(db, settings.business, settings.fieldpulse, transport, lanes)
        interval = settings.fieldpulse.sync_interval
    elif settings.backend == "housecallpro" and settings.housecallpro is not None:
        from fsm_mcp.connectors.housecallpro.backend import HousecallProBackend

        backend = HousecallProBackend.open(db, settings.business, settings.housecallpro, transport, lanes)
        interval = settings.housecallpro.sync_interval
    else:
        raise ValueError(f"the {settings.backend} backend's settings are missing")
    try:
        async with anyio.create_task_group() as tg:
            if background and interval > 0:
                tg.start_soon(_keep_synced, backend, interval)
            yield backend
            tg.cancel_scope.cancel()
    finally:
        await backend.aclose()


def sync_lease(backend: VendorBackend, interval: float) -> Lease:
    """One replica at a time syncs a business's directory; a dead one's turn passes on after three intervals
    (at least a minute)."""
    return Lease(backend.db, f"sync:{backend.tenant}", timedelta(seconds=max(60.0, 3 * interval)))


async def sync_if_ours(backend: VendorBackend, lease: Lease) -> SyncReport | None:
    """Read the vendor's job changes (`backend.changes`) and sync the directory if this process holds (or can
    take) the lease, renewing it while they run; None when another replica holds it."""
    if not await lease.take():
        return None
    async with anyio.create_task_group() as tg:
        async def renew() -> None:
            while True:
                await anyio.sleep(lease.ttl.total_seconds() / 3)
                await lease.take()

        tg.start_soon(renew)
        if backend.changes is not None:  # first: a completion waits on it, a directory sync may take long
            try:
                if recorded := await backend.changes.run():
                    log.info("job changes from %s: %d events", backend.vendor, recorded)
            except FsmError as exc:
                log.warning("job changes from %s not read: %s; trying again next time", backend.vendor, exc)
        report = await backend.sync.run()
        tg.cancel_scope.cancel()
    return report


async def _keep_synced(backend: VendorBackend, interval: float) -> None:
    """Every `interval` seconds from the start of the last round (a round that took longer starts the next at once):
    the poll of job changes is the webhooks' catch-up, so its period is the interval, not the interval plus the
    round's own time."""
    lease = sync_lease(backend, interval)
    try:
        while True:
            began = anyio.current_time()
            try:
                if report := await sync_if_ours(backend, lease):
                    log.info("directory sync from %s: %s", backend.vendor, report.stored)
            except FsmError as exc:  # the vendor is down or refusing: lookups go on from the directory as it is
                log.warning("directory sync from %s failed: %s; trying again in %.0f s", backend.vendor, exc, interval)
            except Exception as exc:  # a bug in the background work must not take the serving replica down with it
                log.error("directory sync from %s crashed (%s); trying again in %.0f s\n%s", backend.vendor,
                          type(exc).__name__, interval, "\n".join(f"  {f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(exc.__traceback__)))
                # where it happened, not the message: a driver's error may quote a record
            await _between(backend, lease, began + interval)
    finally:
        with anyio.CancelScope(shield=True):
            await lease.release()  # a clean stop hands the work on at once


async def _between(backend: VendorBackend, lease: Lease, until: float) -> None:
    """Until the next full round (`until`, on anyio's clock): after a webhook, a quick poll of the jobs alone
    (`JobChangePoll.run(quick=True)`), at most one every `QUICK_GAP` seconds, so that a delivery lost while the
    vendor is busy sending others is caught up within seconds rather than at the next full round."""
    changes = backend.changes
    while (left := until - anyio.current_time()) > 0:
        if changes is None:
            await anyio.sleep(left)
            return
        with anyio.move_on_after(left):
            await changes.nudged.wait()
        if not changes.nudged.is_set():
            return
        await anyio.sleep(min(QUICK_GAP, max(0.0, until - anyio.current_time())))  # the burst's deliveries gather
        changes.nudged = anyio.Event()
        if until <= anyio.current_time() or not await lease.take():
            continue
        try:
            await changes.run(quick=True)
        except FsmError as exc:
            log.warning("quick job-change poll of %s failed: %s", backend.vendor, exc)
