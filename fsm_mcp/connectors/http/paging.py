"""Walking a vendor's paged lists: page numbers from 1, a page size, and how the vendor says
there is more."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fsm_mcp.connectors.http.client import VendorClient


@dataclass(frozen=True, slots=True)
class PageStyle:
    page: str  # the page-number parameter (pages count from 1)
    size: str  # the page-size parameter
    most: int  # the largest page the vendor serves
    items: Callable[[Any], list[dict[str, Any]]]
    more: Callable[[Any, int], bool]  # (body, page size asked) -> another page follows


SERVICETITAN = PageStyle("page", "pageSize", 5000, lambda body: body["data"], lambda body, _: bool(body["hasMore"]))


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
