"""A process killed after the vendor rotated the refresh token and before the store kept the new one leaves
the old one in the store. Xero takes it again for 30 minutes (its documented grace) and the next process goes
on; Intuit documents no grace, so QuickBooks refuses it, the message says to connect again, and the refusal is
kept (the crash benchmark's first run asked 8,976 times in 15 minutes without it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from fsm_mcp.clock import Clock
from fsm_mcp.errors import VendorRejected
from fsm_mcp.settings import Settings
from fsm_mcp.store import Store, open_store
from tests.accounting_rig import books

pytestmark = pytest.mark.anyio


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Store]:
    store = open_store(settings.db_path, Clock())
    yield store
    store.close()


def rotated_behind_our_back(rig: object) -> None:
    """What the vendor did for a process that died before keeping its answer."""
    auth = rig.fake.auth  # type: ignore[attr-defined]
    [old] = list(auth.refresh)
    auth.token({"grant_type": "refresh_token", "refresh_token": old, "client_id": auth.client_id,
                "client_secret": auth.client_secret}, "")


async def test_xero_takes_the_old_refresh_token_within_its_grace_and_the_new_one_is_kept(db: Store) -> None:
    with books("xero", db) as rig:
        await rig.connect()
        rotated_behind_our_back(rig)
        db.clock.advance(timedelta(hours=1))  # our stored access token is due: the next request refreshes
        sink = rig.sink()
        await sink.books.probe()
        assert rig.fake.auth.grace_uses == 1 and rig.fake.auth.dead_refresh_uses == 0
        db.clock.advance(timedelta(hours=1))
        await rig.sink().books.probe()  # another process, from the token the first one kept
        await rig.aclose()
    assert rig.fake.auth.grace_uses == 1 and rig.fake.auth.dead_refresh_uses == 0


async def test_quickbooks_refuses_the_old_refresh_token_and_says_to_connect_again(db: Store) -> None:
    with books("quickbooks", db) as rig:
        await rig.connect()
        rotated_behind_our_back(rig)
        db.clock.advance(timedelta(hours=2))
        sink = rig.sink()
        with pytest.raises(VendorRejected) as refused:
            await sink.books.probe()
        for _ in range(3):  # the refusal is kept: the token endpoint is not asked again and again
            with pytest.raises(VendorRejected):
                await sink.books.probe()
        await rig.aclose()
    assert "fsm-mcp accounting connect" in str(refused.value) and rig.fake.auth.dead_refresh_uses == 1
