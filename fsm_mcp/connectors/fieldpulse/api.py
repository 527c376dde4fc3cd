"""FieldPulse's API as the connector sees it, on the shared HTTP kit.

Every call carries the company's key in `x-api-key`; 50 requests a second per key. A list
pages with `limit` (at most 100) and `page`, and says nothing of a next page, so a full
page means one more request. Success bodies are `{"error": false, "response": ...}`;
a 400 is `{"error": true, "errors": [...]}`, other failures `{"message": ...}`.

The spec declares `filter` ("array of attribute, operator, and value parts") on most
lists but not its encoding; `where` writes it as a JSON array of those triples, in this
one place.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx2 as httpx

from fsm_mcp.connectors.fieldpulse.config import FieldPulseSettings
from fsm_mcp.connectors.http.auth import ApiKey
from fsm_mcp.connectors.http.client import Check, Policy, VendorClient
from fsm_mcp.connectors.http.lanes import Lanes, LocalLanes
from fsm_mcp.connectors.http.limits import Breaker
from fsm_mcp.connectors.http.paging import FIELDPULSE, collect, in_order

VENDOR = "FieldPulse"
Json = dict[str, Any]


def describe(response: httpx.Response) -> str:
    """A FieldPulse error body as one line."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict) and body.get("errors"):
        return "; ".join(map(str, body["errors"]))
    return str(body.get("message") if isinstance(body, dict) and body.get("message") else f"HTTP {response.status_code}")


def where(*conditions: tuple[str, str, Any]) -> str:
    """A `filter` value: (attribute, operator, value) triples."""
    return json.dumps([list(c) for c in conditions])


def key_tenant(settings: FieldPulseSettings) -> str:
    """FieldPulse limits each API key: its lane is named by a digest of the key, which never leaves."""
    return hashlib.sha256(settings.api_key.get_secret_value().encode()).hexdigest()[:16]


class FieldPulseApi:
    def __init__(self, settings: FieldPulseSettings, http: httpx.AsyncClient, policy: Policy | None = None,
                 lanes: Lanes | None = None) -> None:
        self.settings = settings
        lane = (lanes or LocalLanes()).lane(VENDOR, key_tenant(settings), settings.rate)
        if (watch := getattr(lane, "watch", None)) is not None:  # a Redis lane counts by its answers
            watch(http)
        self.client = VendorClient(VENDOR, http, ApiKey("x-api-key", settings.api_key), lane, Breaker(VENDOR), policy,
                                   describe)

    async def page(self, path: str, params: Json | None = None, budget: float | None = None) -> Json:
        """One answer whole: `response` and, when asked with calculate_count, `total_results`."""
        return await self.client.get(path, params, budget=budget)  # type: ignore[no-any-return]

    async def get(self, path: str, params: Json | None = None) -> Any:
        return (await self.client.get(path, params))["response"]

    async def all(self, path: str, params: Json | None = None, size: int | None = None) -> list[Json]:
        return await collect(self.client, path, params or {}, FIELDPULSE, size)

    async def ahead(self, path: str, params: Json, window: int = 4) -> list[Json]:
        """Every record of a list, the pages after a full first one asked `window` at a time (taken in order) until
        one comes back short: for the change polls, where a window of changes spans pages and each waited for the
        one before it. `/jobs` declares no `calculate_count`, so the pages are asked ahead, and up to `window` - 1
        past the end are asked for nothing; a list that fits one page costs one request, as before."""
        size = FIELDPULSE.most
        first = await self.get(path, {**params, "page": 1, "limit": size})
        rows = list(first)
        if len(first) < size:
            return rows

        last = first

        async def take(_: int, page: list[Json]) -> bool:
            nonlocal last
            rows.extend(page)
            last = page
            return len(page) >= size

        ahead = range(2, 102)  # past these, one page after another
        await in_order(lambda n: self.get(path, {**params, "page": n, "limit": size}), ahead, window, take)
        page = ahead[-1]
        while len(last) >= size:
            page += 1
            await take(page, await self.get(path, {**params, "page": page, "limit": size}))
        return rows

    async def write(self, method: str, path: str, body: Any = None, *, check: Check | None = None,
                    what: str = "the change") -> Any:
        answer = await self.client.write(method, path, json=body, check=check, what=what)
        return answer["response"] if isinstance(answer, dict) and "response" in answer else answer
