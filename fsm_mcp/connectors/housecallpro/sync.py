"""Housecall Pro's customers for the directory sync (`connectors/sync.py`): each customer
comes with its numbers, e-mail and addresses, so one list fills the whole directory.

GET /customers filters by nothing but a search, and sorts by any attribute. A full walk
pages oldest first by creation; changes are read newest first by `updated_at`, page after
page, until a page reaches back past the cursor. In that order a record changed while the
list is read moves to the front, already passed: the records behind it shift back and are
read twice, never skipped, and the change itself is read next time (the cursor never passes
the time the walk began).
"""

from __future__ import annotations

from typing import Any

from fsm_mcp.connectors.housecallpro import mapping
from fsm_mcp.connectors.housecallpro.api import HousecallProApi
from fsm_mcp.connectors.sync import BUDGET, DirectorySync, Feed, Page
from fsm_mcp.directory import mirror
from fsm_mcp.settings import Business
from fsm_mcp.store import Store
from fsm_mcp.store.db import from_db

Json = dict[str, Any]
SINCE = "fsm-mcp:since"  # the cursor, carried to `fetch` among the parameters; never sent


def directory_sync(api: HousecallProApi, db: Store, business: Business, page_size: int = 100,
                   in_flight: int = 16) -> DirectorySync:
    tenant, region, zone = business.tenant_id, business.country, business.zone

    async def fetch(params: Json, page: int, count: bool) -> Page:
        params = dict(params)
        since = params.pop(SINCE, None)
        body = await api.get("/customers", {**params, "page": page, "page_size": page_size}, budget=BUDGET)
        rows, more = body["customers"], int(body.get("page") or page) < int(body.get("total_pages") or 0)
        if since is not None:
            cursor = from_db(since)
            fresh = [r for r in rows if (at := mapping.when(r.get("updated_at"), zone)) is None or at >= cursor]
            return Page(fresh, more and len(fresh) == len(rows))
        return Page(rows, more, body.get("total_items"))

    def store(conn: Any, got: list[Json], index: bool) -> None:
        mirror.upsert(conn, tenant, db.clock.now(), index=index,
                      customers=[mapping.customer(r, zone) for r in got],
                      locations=[loc for r in got for loc in mapping.locations(r, zone)],
                      contacts=[k for r in got for k in mapping.customer_contacts(r, region)])

    return DirectorySync(db, tenant, [[Feed(
        "customers", fetch, page_size,
        everything={"sort_by": "created_at", "sort_direction": "asc"},
        since=lambda cursor: {"sort_by": "updated_at", "sort_direction": "desc", SINCE: cursor},
        by_change=False, store=store, modified=lambda r: mapping.when(r.get("updated_at"), zone),
    )]], in_flight)
