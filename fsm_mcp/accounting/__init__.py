"""The books: invoices to QuickBooks Online or Xero exactly once, payments back (issue 20).

`open_sink` builds a business's `Sink` (sink.py) over its vendor's `Books` (quickbooks/, xero/), on the
HTTP kit (http.py) with the grant kept encrypted in the store (oauth.py); webhooks.py verifies and
routes the vendors' signed webhooks; settings.py reads `[businesses.<id>.accounting]`.
"""

from __future__ import annotations

from datetime import timedelta

import httpx2 as httpx

from fsm_mcp.accounting.settings import AccountingSettings
from fsm_mcp.accounting.sink import Books, Sink
from fsm_mcp.connectors.http.lanes import Lanes
from fsm_mcp.store import Store


def open_books(db: Store, tenant: str, settings: AccountingSettings, transport: httpx.AsyncBaseTransport | None = None,
               lanes: Lanes | None = None, replicas: int = 1) -> Books:
    if settings.provider == "quickbooks":
        from fsm_mcp.accounting.quickbooks.books import QuickBooks

        return QuickBooks(db, tenant, settings, transport, lanes, replicas)
    from fsm_mcp.accounting.xero.books import Xero

    return Xero(db, tenant, settings, transport, lanes, replicas)


def open_sink(db: Store, tenant: str, settings: AccountingSettings, transport: httpx.AsyncBaseTransport | None = None,
              lanes: Lanes | None = None, region: str = "US", replicas: int = 1) -> Sink:
    return Sink(db, tenant, open_books(db, tenant, settings, transport, lanes, replicas), region,
                settings.email_invoices, webhook_key=settings.webhook_key, lease=timedelta(seconds=settings.lease_seconds),
                at_once=settings.at_once)
