"""Xero's 5,000 requests a day per organisation, kept by our own count in the store: every replica's requests
count against one limit, and past it a request is refused at once, saying when to try again, with nothing sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from fsm_mcp.accounting.http import DayLimitReached
from fsm_mcp.clock import Clock
from fsm_mcp.connectors.http.lanes import LocalLanes
from fsm_mcp.settings import Settings
from fsm_mcp.store import Store, open_store
from tests.accounting_rig import books, invoiced_job

pytestmark = pytest.mark.anyio


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Store]:
    store = open_store(settings.db_path, Clock())
    yield store
    store.close()


async def test_two_replicas_share_one_day_limit_and_past_it_nothing_is_sent(db: Store) -> None:
    with books("xero", db) as rig:
        await rig.connect()
        # Two replicas: each its own process's lanes, one store.
        first, second = rig.sink(LocalLanes(), per_day=4), rig.sink(LocalLanes(), per_day=4)
        await first.books.probe()
        await second.books.probe()
        await first.books.probe()
        await second.books.probe()
        sent = len(rig.fake.door.log)
        with pytest.raises(DayLimitReached) as refused:
            await first.books.probe()
        with pytest.raises(DayLimitReached):
            await second.post_invoice(invoiced_job(db, "Ann Lee", "(217) 555-0199"))
        assert len(rig.fake.door.log) == sent == 4  # the refusals sent nothing
        message = str(refused.value)
        assert "4 requests a day" in message and "nothing was sent" in message and "Try again in 2" in message
        assert 23 * 3600 < refused.value.seconds <= 25 * 3600

        db.clock.advance(timedelta(hours=25))  # the counted hours have left the window
        await first.books.probe()
        await rig.aclose()
    assert len(rig.fake.door.log) == sent + 1


async def test_the_days_count_is_kept_by_the_hour_and_frees_as_the_window_moves(db: Store) -> None:
    with books("xero", db) as rig:
        await rig.connect()
        sink = rig.sink(per_day=3)
        await sink.books.probe()
        db.clock.advance(timedelta(hours=10))
        await sink.books.probe()
        await sink.books.probe()
        with pytest.raises(DayLimitReached) as refused:
            await sink.books.probe()
        # The first hour's request leaves the window about 15 hours on (counted whole: up to an hour late).
        assert 14 * 3600 < refused.value.seconds <= 15 * 3600
        db.clock.advance(timedelta(seconds=refused.value.seconds))
        await sink.books.probe()
        with pytest.raises(DayLimitReached):
            await sink.books.probe()
        await rig.aclose()
