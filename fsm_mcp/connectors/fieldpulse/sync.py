"""FieldPulse's lists for the directory sync (`connectors/sync.py`): customers (with the
phones and e-mails on their records) and their locations.

Both page in id order, 100 to a page, the most FieldPulse serves; changes are asked for
with `filter` on updated_at, in the same order, where a change moves nothing. Customer
contacts live under each customer (one request per customer, 400 s for 20,000 at the
published rate), so the sync leaves them out; the ones fsm-mcp adds are written through.
"""

from __future__ import annotations

from typing import Any

from fsm_mcp.connectors.fieldpulse import mapping
from fsm_mcp.connectors.fieldpulse.api import FieldPulseApi, where
from fsm_mcp.connectors.http.paging import FIELDPULSE
from fsm_mcp.connectors.sync import BUDGET, DirectorySync, Feed, Page
from fsm_mcp.directory import mirror
from fsm_mcp.settings import Business
from fsm_mcp.store import Store
from fsm_mcp.store.db import from_db

Json = dict[str, Any]


def directory_sync(api: FieldPulseApi, db: Store, business: Business, in_flight: int = 16) -> DirectorySync:
    tenant, region, size = business.tenant_id, business.country, FIELDPULSE.most

    def feed(name: str, path: str, everything: Json, rows: Any) -> Feed:
        async def fetch(params: Json, page: int, count: bool) -> Page:
            body = await api.page(path, {**params, "page": page, "limit": size, **({"calculate_count": True} if count else {})},
                                  budget=BUDGET)
            got = body["response"]
            return Page(got, len(got) >= size, body.get("total_results"))

        def store(conn: Any, got: list[Json], index: bool) -> None:
            mirror.upsert(conn, tenant, db.clock.now(), index=index, **rows(got))

        def since(cursor: str) -> Json:
            return {**everything, "filter": where(("updated_at", ">=", mapping.stamp(from_db(cursor))))}

        return Feed(name, fetch, size, everything, since, by_change=False, store=store,
                    modified=lambda r: mapping.when(r.get("updated_at")))

    return DirectorySync(db, tenant, [[
        feed("customers", "/customers", {}, lambda got: {
            "customers": [mapping.customer(r) for r in got],
            "contacts": [k for r in got for k in mapping.customer_contacts(r, region)]}),
        feed("locations", "/locations", {"object_type": "customer"},
             lambda got: {"locations": [mapping.location(r) for r in got if r.get("object_type", "customer") == "customer"]}),
    ]], in_flight)
