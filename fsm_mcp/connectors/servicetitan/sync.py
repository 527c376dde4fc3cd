"""The customer directory, kept from ServiceTitan: customers, locations and both kinds of
contacts.

The first sync of each list pages through it by id, several pages in flight at the
published rate, and commits each page with the page number reached, so a sync killed
halfway resumes where it stopped. Later syncs ask for what changed since the cursor,
walking forward by modification time: each round starts at the newest time actually
stored, so equal timestamps are read again (upserts make that harmless) and a record
that moves while the list is read is not skipped. The contact lists cannot be sorted;
they come in id order, where a change moves nothing, so they are paged plainly and the
cursor set at the end. The cursor after the first sync is the
older of its start time and the newest record stored, so changes made during it are
read again too.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio

from fsm_mcp.connectors.http.paging import in_order
from fsm_mcp.connectors.servicetitan import mapping
from fsm_mcp.connectors.servicetitan.api import ServiceTitanApi
from fsm_mcp.directory import identity_model, mirror
from fsm_mcp.directory.customers import rebuild_index
from fsm_mcp.settings import Business
from fsm_mcp.store.db import Database, to_db, utcnow

log = logging.getLogger(__name__)
Json = dict[str, Any]
Progress = Callable[[str, int, int | None], None]  # (list, records stored, records expected)
BUDGET = 120.0  # seconds a sync request may spend retrying: no caller is waiting on it


@dataclass(frozen=True, slots=True)
class Resource:
    name: str
    module: str
    path: str
    sortable: bool  # the list takes `sort` and `active` (the contact lists take neither: they come in id order)


RESOURCES = (
    Resource("customers", "crm", "customers", True),
    Resource("locations", "crm", "locations", True),
    Resource("customer-contacts", "crm", "customers/contacts", False),
    Resource("location-contacts", "crm", "locations/contacts", False),
)


@dataclass
class Report:
    stored: dict[str, int]
    full: bool  # a first (full) sync finished in this run


class Sync:
    def __init__(self, api: ServiceTitanApi, db: Database, business: Business, page_size: int = 5000,
                 in_flight: int = 16) -> None:
        self.api, self.db, self.business = api, db, business
        self.tenant = business.tenant_id
        self.page_size = page_size
        self.in_flight = in_flight
        self._lock = anyio.Lock()  # the background loop and `fsm-mcp sync` never run two at once in a process

    async def run(self, progress: Progress | None = None) -> Report:
        async with self._lock:
            report = Report(stored={}, full=False)
            for resource in RESOURCES:
                state = await self.db.aread(_state, self.tenant, resource.name)
                if state["full_done"]:
                    report.stored[resource.name] = await self._changes(resource, state, progress)
                else:
                    report.stored[resource.name] = await self._full(resource, state, progress)
                    report.full = True
            if report.full:  # the first sync loaded records without indexing them: index them all at once
                await self.db.awrite(rebuild_index, self.tenant)
                await self.db.awrite(identity_model.train, self.tenant)
            return report

    async def _full(self, resource: Resource, state: Json, progress: Progress | None) -> int:
        started = state["started_at"] or to_db(utcnow())
        params = {"sort": "+Id", "active": "Any"} if resource.sortable else {}
        page = int(state["next_page"])
        body = await self._page(resource, {**params, "includeTotal": True}, page)
        total = body.get("totalCount")
        newest: str | None = state["newest"]
        stored, finished = 0, False

        async def store(n: int, got: Json) -> bool:  # in page order, each with the page reached: a restart resumes here
            nonlocal newest, stored, finished
            newest = await self.db.awrite(self._store, resource, got["data"], newest,
                                          {"started_at": started, "next_page": n + 1}, False)
            stored += len(got["data"])
            if progress:
                progress(resource.name, stored, total)
            if not got["hasMore"]:
                cursor = min(started, newest) if newest else started
                await self.db.awrite(_save, self.tenant, resource.name, {"full_done": 1, "cursor": cursor, "next_page": 1})
                finished = True
            return not finished

        if await store(page, body) and total is not None:  # the page count is known: many pages in flight
            last = math.ceil(total / self.page_size)
            await in_order(lambda n: self._page(resource, params, n), range(page + 1, last + 1), self.in_flight, store)
            page = max(page, last)
        while not finished:  # no count given, or records added meanwhile: one page after another
            page += 1
            await store(page, await self._page(resource, params, page))
        return stored

    async def _changes(self, resource: Resource, state: Json, progress: Progress | None) -> int:
        cursor, page, stored = state["cursor"], 1, 0
        newest = cursor
        while True:
            params = {"modifiedOnOrAfter": cursor, **({"sort": "+ModifiedOn"} if resource.sortable else {})}
            body = await self._page(resource, params, page)
            newest = await self.db.awrite(self._store, resource, body["data"], newest, {}, True)
            stored += len(body["data"])
            if progress:
                progress(resource.name, stored, None)
            if not body["hasMore"]:
                await self.db.awrite(_save, self.tenant, resource.name, {"cursor": newest})
                return stored
            if not resource.sortable:  # in id order, changes do not move records: plain pages, cursor at the end
                page += 1
            elif newest == cursor:
                page += 1  # a whole page shares one timestamp: step past it
            else:
                cursor, page = newest, 1
                await self.db.awrite(_save, self.tenant, resource.name, {"cursor": cursor})

    async def _page(self, resource: Resource, params: Json, page: int) -> Json:
        return await self.api.get(resource.module, resource.path,  # type: ignore[no-any-return]
                                  {**params, "page": page, "pageSize": self.page_size}, budget=BUDGET)

    def _store(self, conn: sqlite3.Connection, resource: Resource, rows: list[Json], newest: str | None,
               state: Json, index: bool) -> str | None:
        """Upsert one page and record how far the sync got. Pages of a first sync are not indexed one by
        one (`index`): the whole directory is indexed once when it ends, at a fraction of the cost."""
        region, now = self.business.country, utcnow()
        if resource.name == "customers":
            mirror.upsert(conn, self.tenant, now, customers=[mapping.customer(r) for r in rows], index=index)
        elif resource.name == "locations":
            mirror.upsert(conn, self.tenant, now, locations=[mapping.location(r) for r in rows], index=index)
        else:
            owner = "customerId" if resource.name == "customer-contacts" else "locationId"
            key = "customer_id" if owner == "customerId" else "location_id"
            found = [mapping.contact(r, region, **{key: str(r[owner])}) for r in rows]
            mirror.upsert(conn, self.tenant, now, contacts=[c for c in found if c is not None], index=index)
        for r in rows:
            if (at := mapping.when(r.get("modifiedOn"))) and (newest is None or to_db(at) > newest):
                newest = to_db(at)
        _save(conn, self.tenant, resource.name, {**state, "newest": newest} if state else {})
        return newest


def _state(conn: sqlite3.Connection, tenant: str, resource: str) -> Json:
    row = conn.execute("SELECT * FROM sync_state WHERE tenant_id=? AND resource=?", (tenant, resource)).fetchone()
    return dict(row) if row else {"cursor": None, "full_done": 0, "next_page": 1, "started_at": None, "newest": None}


def _save(conn: sqlite3.Connection, tenant: str, resource: str, changes: Json) -> None:
    if not changes:
        return
    conn.execute("INSERT OR IGNORE INTO sync_state (tenant_id, resource) VALUES (?, ?)", (tenant, resource))
    sets = ", ".join(f"{k}=?" for k in changes)
    conn.execute(f"UPDATE sync_state SET {sets} WHERE tenant_id=? AND resource=?", (*changes.values(), tenant, resource))
