"""Keeping a vendor's customer directory: the walk every connector shares. A connector says
how to read each of its lists (`Feed`); this module decides what to read and remembers how
far it got.

The first sync of each list pages through it in a stable order, several pages in flight
at the vendor's rate, and commits each page with the page number reached, so a sync
killed halfway resumes where it stopped. Pages of a first sync are stored without
indexing; the whole directory is indexed once at the end, at a fraction of the cost.

Later syncs ask for what changed since the cursor. Where the vendor sorts changes by
modification time, each round starts again at the newest time actually stored, so equal
timestamps are read again (upserts make that harmless) and a record that moves while the
list is read is not skipped. Where changes come in id order (a change moves nothing),
they are paged plainly and the cursor set at the end. Either way the cursor never passes
the time the walk began, so a change made during it is read again next time.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import anyio

from fsm_mcp.connectors.http.concurrently import concurrently
from fsm_mcp.connectors.http.paging import in_order
from fsm_mcp.directory import identity_model
from fsm_mcp.directory.customers import rebuild_index
from fsm_mcp.store import Store, sync_state
from fsm_mcp.store.db import to_db

Json = dict[str, Any]
Progress = Callable[[str, int, int | None], None]  # (list, records stored, records expected)
BUDGET = 120.0  # seconds a sync request may spend retrying: no caller is waiting on it


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Json]
    more: bool
    total: int | None = None  # records in the whole list, when the vendor was asked and said
    prepared: Any = None  # the rows as the feed's `store` takes them (`Feed.prepare`), once fetched


@dataclass(frozen=True, slots=True)
class Feed:
    """One of a vendor's lists, as the sync reads it."""

    name: str
    fetch: Callable[[Json, int, bool], Awaitable[Page]]  # (params, page number, ask for the total) -> Page
    page_size: int
    everything: Json  # parameters of a full walk, in a stable order
    since: Callable[[str], Json]  # cursor (a stored time) -> parameters asking for what changed since
    by_change: bool  # changes come sorted by modification time, not in id order
    store: Callable[[Any, Any, bool], None]  # (connection, the rows as `prepare` made them, index them now)
    modified: Callable[[Json], datetime | None]
    # The rows mapped for `store` as soon as a page arrives, while the other pages in flight wait for the vendor:
    # the pages are stored one at a time, behind one write lock for every replica, and mapping inside that turn
    # (phone numbers parsed, for one) kept the vendor's rate waiting on it.
    prepare: Callable[[list[Json]], Any] = lambda rows: rows


@dataclass
class Report:
    stored: dict[str, int]
    full: bool  # a first (full) sync finished in this run


class DirectorySync:
    """`stages`: lists read one stage after another; the lists of a stage are read at once (sharing the
    vendor's pace), so one list's last pages and the next one's first are not each sent alone. A list whose
    records point at another's (a location's contacts at its location) goes in a later stage."""

    def __init__(self, db: Store, tenant: str, stages: list[list[Feed]], in_flight: int = 16) -> None:
        self.db, self.tenant, self.stages = db, tenant, stages
        self.in_flight = in_flight
        self._lock = anyio.Lock()  # the background loop and `fsm-mcp sync` never run two at once in a process

    async def run(self, progress: Progress | None = None) -> Report:
        async with self._lock:
            report = Report(stored={}, full=False)

            async def one(feed: Feed) -> None:
                state = await self.db.aread(sync_state.load, self.tenant, feed.name)
                if state["full_done"]:
                    report.stored[feed.name] = await self._changes(feed, state, progress)
                else:
                    report.stored[feed.name] = await self._full(feed, state, progress)
                    report.full = True

            for stage in self.stages:
                await concurrently(*(partial(one, feed) for feed in stage))
            if report.full:  # the first sync loaded records without indexing them: index them all at once
                await self.db.awrite(rebuild_index, self.tenant)
                await self.db.awrite(identity_model.train, self.tenant, self.db.clock.now())
            return report

    async def _full(self, feed: Feed, state: Json, progress: Progress | None) -> int:
        started = state["started_at"] or to_db(self.db.clock.now())
        page = int(state["next_page"])
        first = await _fetched(feed, feed.everything, page, True)
        total = first.total
        # The page the count says is the last ends the walk, even when it is full (a vendor that says nothing of a
        # next page would otherwise cost one more request, sent alone). Records added meanwhile are changes since
        # the walk began: the next sync reads them.
        last = max(1, math.ceil(total / feed.page_size)) if total is not None else None
        newest: str | None = state["newest"]
        stored, finished = 0, False

        async def store(n: int, got: Page) -> bool:  # in page order, each with the page reached: a restart resumes here
            nonlocal newest, stored, finished
            newest = await self.db.awrite(self._store, feed, got, newest, {"started_at": started, "next_page": n + 1}, False)
            stored += len(got.rows)
            if progress:
                progress(feed.name, stored, total)
            if not got.more or (last is not None and n >= last):
                cursor = min(started, newest) if newest else started
                await self.db.awrite(sync_state.save, self.tenant, feed.name, {"full_done": 1, "cursor": cursor, "next_page": 1})
                finished = True
            return not finished

        if await store(page, first) and last is not None:  # the page count is known: many pages in flight
            await in_order(lambda n: _fetched(feed, feed.everything, n, False), range(page + 1, last + 1), self.in_flight,
                           store)
            page = max(page, last)
        while not finished:  # no count given, or records added meanwhile: one page after another
            page += 1
            await store(page, await _fetched(feed, feed.everything, page, False))
        return stored

    async def _changes(self, feed: Feed, state: Json, progress: Progress | None) -> int:
        started = to_db(self.db.clock.now())
        cursor, page, stored = state["cursor"], 1, 0
        newest = cursor
        while True:
            got = await _fetched(feed, feed.since(cursor), page, False)
            newest = await self.db.awrite(self._store, feed, got, newest, {}, True)
            stored += len(got.rows)
            if progress:
                progress(feed.name, stored, None)
            if not got.more:
                await self.db.awrite(sync_state.save, self.tenant, feed.name, {"cursor": newest if feed.by_change else min(newest, started)})
                return stored
            if not feed.by_change:  # in id order, changes do not move records: plain pages, cursor at the end
                page += 1
            elif newest == cursor:
                page += 1  # a whole page shares one timestamp: step past it
            else:
                cursor, page = newest, 1
                await self.db.awrite(sync_state.save, self.tenant, feed.name, {"cursor": cursor})

    def _store(self, conn: Any, feed: Feed, got: Page, newest: str | None, state: Json,
               index: bool) -> str | None:
        """Upsert one page and record how far the sync got."""
        feed.store(conn, got.prepared, index)
        for r in got.rows:
            if (at := feed.modified(r)) and (newest is None or to_db(at) > newest):
                newest = to_db(at)
        sync_state.save(conn, self.tenant, feed.name, {**state, "newest": newest} if state else {})
        return newest


async def _fetched(feed: Feed, params: Json, page: int, count: bool) -> Page:
    got = await feed.fetch(params, page, count)
    return Page(got.rows, got.more, got.total, feed.prepare(got.rows))
