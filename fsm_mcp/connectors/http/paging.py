"""Walking a vendor's paged lists: page numbers from 1, a page size, and how the vendor says
there is more."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio

from fsm_mcp.connectors.http.client import VendorClient
from fsm_mcp.connectors.http.concurrently import first_failure

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageStyle:
    page: str  # the page-number parameter (pages count from 1)
    size: str  # the page-size parameter
    most: int  # the largest page the vendor serves
    items: Callable[[Any], list[dict[str, Any]]]
    more: Callable[[Any, int], bool]  # (body, page size asked) -> another page follows


SERVICETITAN = PageStyle("page", "pageSize", 5000, lambda body: body["data"], lambda body, _: bool(body["hasMore"]))
# FieldPulse says nothing of a next page: a full page means there may be one.
FIELDPULSE = PageStyle("page", "limit", 100, lambda body: body["response"], lambda body, size: len(body["response"]) >= size)


async def pages(
    client: VendorClient, path: str, params: dict[str, Any], style: PageStyle, size: int | None = None,
    start: int = 1, budget: float | None = None,
) -> AsyncIterator[tuple[int, list[dict[str, Any]]]]:
    """(page number, items) for each page from `start`, one request at a time."""
    size = min(size or style.most, style.most)
    page = start
    while True:
        body = await client.get(path, {**params, style.page: page, style.size: size}, budget=budget)
        yield page, style.items(body)
        if not style.more(body, size):
            return
        page += 1


async def collect(client: VendorClient, path: str, params: dict[str, Any], style: PageStyle,
                  size: int | None = None) -> list[dict[str, Any]]:
    return [item async for _, items in pages(client, path, params, style, size) for item in items]


async def in_order(fetch: Callable[[int], Awaitable[T]], numbers: range, window: int,
                   consume: Callable[[int, T], Awaitable[bool]]) -> None:
    """Fetch the pages `numbers` with up to `window` in flight, handing each to `consume` in page order as
    soon as it and every page before it have arrived; a new fetch starts as each page is consumed, so the
    vendor's rate, not its latency, sets the pace. `consume` returning False stops the walk."""
    results: dict[int, T] = {}
    arrived = {n: anyio.Event() for n in numbers}
    queue = iter(numbers)

    async def get(n: int) -> None:
        results[n] = await fetch(n)
        arrived[n].set()

    try:
        async with anyio.create_task_group() as tg:
            for n in itertools.islice(queue, window):
                tg.start_soon(get, n)
            for n in numbers:
                await arrived[n].wait()
                if not await consume(n, results.pop(n)):
                    tg.cancel_scope.cancel()
                    return
                if (following := next(queue, None)) is not None:
                    tg.start_soon(get, following)
    except BaseExceptionGroup as group:
        raise first_failure(group) from None
