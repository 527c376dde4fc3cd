"""ServiceTitan's lists for the directory sync (`connectors/sync.py`): customers, locations
and both kinds of contacts.

Customers and locations page by id in a full walk and by modification time for changes
(`modifiedOnOrAfter`, `sort=+ModifiedOn`). The contact lists take no `sort` (the contract
test found it) and come in id order, where a change moves nothing; they also refuse a
request with no date (their descriptions: modifiedOn or modifiedOnOrAfter must be given),
so their full walk asks for everything modified since `EVERYTHING_SINCE`.
"""

from __future__ import annotations

from typing import Any

from fsm_mcp.connectors.servicetitan import mapping
from fsm_mcp.connectors.servicetitan.api import ServiceTitanApi
from fsm_mcp.connectors.sync import BUDGET, DirectorySync, Feed, Page
from fsm_mcp.directory import mirror
from fsm_mcp.settings import Business
from fsm_mcp.store import Store

Json = dict[str, Any]
# ServiceTitan sets modifiedOn itself when a record is written, and it opened in 2007: no record of any tenant can
# carry an earlier time, and this one is inside every date type a server might parse it into.
EVERYTHING_SINCE = "2000-01-01T00:00:00Z"


def directory_sync(api: ServiceTitanApi, db: Store, business: Business, page_size: int = 5000,
                   in_flight: int = 16) -> DirectorySync:
    tenant, region = business.tenant_id, business.country

    def feed(name: str, module: str, path: str, sortable: bool, rows: Any) -> Feed:
        async def fetch(params: Json, page: int, count: bool) -> Page:
            body = await api.get(module, path, {**params, "page": page, "pageSize": page_size,
                                                **({"includeTotal": True} if count else {})}, budget=BUDGET)
            return Page(body["data"], bool(body["hasMore"]), body.get("totalCount"))

        def store(conn: Any, mapped: Json, index: bool) -> None:
            mirror.upsert(conn, tenant, db.clock.now(), index=index, **mapped)

        return Feed(
            name, fetch, page_size,
            everything={"sort": "+Id", "active": "Any"} if sortable else {"modifiedOnOrAfter": EVERYTHING_SINCE},
            since=lambda cursor: {"modifiedOnOrAfter": cursor, **({"sort": "+ModifiedOn"} if sortable else {})},
            by_change=sortable, store=store, modified=lambda r: mapping.when(r.get("modifiedOn")), prepare=rows,
        )

    def contacts(owner: str, key: str) -> Any:
        return lambda got: {"contacts": [c for r in got if (c := mapping.contact(r, region, **{key: str(r[owner])}))]}

    return DirectorySync(db, tenant, [
        [feed("customers", "crm", "customers", True, lambda got: {"customers": [mapping.customer(r) for r in got]}),
         feed("locations", "crm", "locations", True, lambda got: {"locations": [mapping.location(r) for r in got]}),
         feed("customer-contacts", "crm", "customers/contacts", False, contacts("customerId", "customer_id"))],
        # A location's contact is stored under the location's customer: the locations must be in first.
        [feed("location-contacts", "crm", "locations/contacts", False, contacts("locationId", "location_id"))],
    ], in_flight)
