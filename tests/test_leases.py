"""Background work runs once among every process sharing the store: a lease decides which, and a dead holder's
turn passes on. Each `Database` here is opened on its own, as another process would open the same file."""

from datetime import timedelta
from pathlib import Path

import pytest

from fsm_mcp.clock import Clock
from fsm_mcp.connectors import sync_if_ours, sync_lease
from fsm_mcp.store import open_store
from fsm_mcp.store.leases import Lease
from tests.st_rig import Rig

pytestmark = pytest.mark.anyio
TTL = timedelta(minutes=3)


async def test_one_holder_at_a_time_and_a_lapsed_lease_passes_on(shared: Path | str) -> None:
    clock = Clock()
    first, second = open_store(shared, clock), open_store(shared, clock)
    a, b = Lease(first, "sync:acme", TTL, holder="replica-a"), Lease(second, "sync:acme", TTL, holder="replica-b")
    try:
        assert await a.take() is True
        assert await b.take() is False  # held and not lapsed
        assert await a.take() is True  # the holder renews
        clock.advance(TTL - timedelta(seconds=1))
        assert await b.take() is False
        clock.advance(timedelta(seconds=1))  # replica a died: its last renewal lapses
        assert await b.take() is True
        assert await a.take() is False  # a replica that wakes up late does not take it back
        assert await Lease(first, "sync:bolt", TTL, holder="replica-a").take() is True  # another business's work
    finally:
        first.close()
        second.close()


async def test_a_released_lease_is_taken_at_once(shared: Path | str) -> None:
    db = open_store(shared)
    a, b = Lease(db, "sync:acme", TTL, holder="replica-a"), Lease(db, "sync:acme", TTL, holder="replica-b")
    try:
        assert await a.take()
        await a.release()
        assert await b.take()
        await a.release()  # releasing what another holds changes nothing
        assert not await a.take()
    finally:
        db.close()


async def test_a_replica_whose_peer_holds_the_sync_lease_sends_the_vendor_nothing(rig: Rig) -> None:
    db = open_store(rig.settings.db_path)
    backend = rig.backend(db)
    lease = sync_lease(backend, interval=60)
    peer = Lease(open_store(rig.settings.db_path), lease.name, lease.ttl, holder="the-other-replica")
    try:
        assert await peer.take()
        rig.fake.door.log.clear()
        assert await sync_if_ours(backend, lease) is None
        assert rig.fake.door.log == []
        await peer.release()
        report = await sync_if_ours(backend, lease)
        assert report is not None and rig.fake.door.log  # its turn: it synced
    finally:
        await backend.aclose()
        peer.db.close()
        db.close()
