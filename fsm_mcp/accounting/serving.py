"""The books while `fsm-mcp serve` runs: each business's sink opened once in the server's lifespan, its outbox
worker (invoice.created -> the books, then the change-data-capture catch-up) running in the background, one
replica at a time (feed.py's store lease), and the sinks reachable by the HTTP app's webhook routes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import anyio

from fsm_mcp.accounting import feed, open_sink
from fsm_mcp.accounting.settings import AccountingSettings, load_for
from fsm_mcp.accounting.sink import Sink
from fsm_mcp.connectors.http.lanes import Lanes, open_lanes
from fsm_mcp.settings import Settings
from fsm_mcp.store import Store

Books = Mapping[str, AccountingSettings]  # business id -> its books' settings


def configured(every: Mapping[str, Settings]) -> dict[str, AccountingSettings]:
    """The businesses that keep books, with their settings (a business keeping none is left out)."""
    found = {}
    for ident in every:
        books = load_for(ident)
        if books is not None:
            found[ident] = books
    return found


@asynccontextmanager
async def keeping_books(db: Store, every: Mapping[str, Settings], books: Books | None = None,
                        lanes: Lanes | None = None, interval: float = 2.0) -> AsyncIterator[dict[str, Sink]]:
    """Each business's sink (by business id) with its worker running for the block. `books`: the settings of
    each (by default read from the configuration and the environment, `configured`)."""
    books = configured(every) if books is None else books
    if not books:
        yield {}
        return
    first = next(iter(every.values()))
    own_lanes = lanes is None
    lanes = lanes or open_lanes(first.redis_url, first.replicas)
    sinks = {ident: open_sink(db, ident, one, lanes=lanes, region=every[ident].business.country,
                              replicas=every[ident].replicas) for ident, one in books.items() if ident in every}
    try:
        async with anyio.create_task_group() as tg:
            for sink in sinks.values():
                tg.start_soon(feed.run, sink, interval)
            yield sinks
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            for sink in sinks.values():
                await sink.aclose()
            if own_lanes:
                await lanes.aclose()
