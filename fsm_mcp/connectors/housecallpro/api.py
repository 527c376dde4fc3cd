"""Housecall Pro's API as the connector sees it, on the shared HTTP kit.

Every call carries `Authorization: Token <key>`. Lists page with `page` (from 1) and
`page_size`, and say how many pages there are (`total_pages`, `total_items`); each list
names its items after what it lists (`customers`, `jobs`, `employees`, ...). A 400 is
`{"message": <the errors in a sentence>, <field>: <its error>}`, a 404 or 422
`{"error": {"message": ...}}`.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import httpx2 as httpx
from pydantic import SecretStr

from fsm_mcp.connectors.housecallpro.config import HousecallProSettings
from fsm_mcp.connectors.http.auth import ApiKey
from fsm_mcp.connectors.http.client import Check, Policy, VendorClient
from fsm_mcp.connectors.http.lanes import Lanes, LocalLanes
from fsm_mcp.connectors.http.limits import Breaker
from fsm_mcp.connectors.http.paging import PageStyle, collect
from fsm_mcp.errors import NotFound, VendorRejected

VENDOR = "Housecall Pro"
Json = dict[str, Any]
MOST = 100  # records a page: the spec names no ceiling, and 100 is what a list is known to serve
ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # Housecall Pro's ids ("job_3f9a...", "cus_..."): nothing that moves a path


def describe(response: httpx.Response) -> str:
    """A Housecall Pro error body as one line."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict):
        if isinstance(body.get("error"), dict) and body["error"].get("message"):
            return str(body["error"]["message"])
        if body.get("message"):
            return str(body["message"])
    return f"HTTP {response.status_code}"


def style(items: str) -> PageStyle:
    """How a list named `items` pages."""
    return PageStyle("page", "page_size", MOST, lambda body: body[items],
                     lambda body, _: int(body.get("page") or 1) < int(body.get("total_pages") or 0))


def key_tenant(settings: HousecallProSettings) -> str:
    """Housecall Pro throttles the company the key belongs to: its lane is named by a digest of the key, which
    never leaves."""
    return hashlib.sha256(settings.api_key.get_secret_value().encode()).hexdigest()[:16]


class HousecallProApi:
    def __init__(self, settings: HousecallProSettings, http: httpx.AsyncClient, policy: Policy | None = None,
                 lanes: Lanes | None = None) -> None:
        self.settings = settings
        lane = (lanes or LocalLanes()).lane(VENDOR, key_tenant(settings), settings.rate)
        if (watch := getattr(lane, "watch", None)) is not None:  # a Redis lane counts by its answers
            watch(http)
        token = ApiKey("Authorization", SecretStr(f"Token {settings.api_key.get_secret_value()}"))
        self.client = VendorClient(VENDOR, http, token, lane, Breaker(VENDOR), policy, describe)

    async def get(self, path: str, params: Json | None = None, budget: float | None = None) -> Any:
        return await self.client.get(path, params, budget=budget)

    async def one(self, path: str, kind: str, ident: str, hint: str) -> Json:
        """A record by id; an id Housecall Pro does not know is the agent's `NotFound`."""
        if not ID.match(ident):
            raise NotFound(kind, ident, f"{kind}_id", hint)
        try:
            return await self.client.get(path.format(ident))  # type: ignore[no-any-return]
        except VendorRejected as exc:
            if exc.status == 404:
                raise NotFound(kind, ident, f"{kind}_id", hint) from None
            raise

    async def all(self, path: str, items: str, params: Json | None = None, size: int | None = None) -> list[Json]:
        return await collect(self.client, path, params or {}, style(items), size)

    async def write(self, method: str, path: str, body: Any = None, *, check: Check | None = None,
                    what: str = "the change") -> Any:
        return await self.client.write(method, path, json=body, check=check, what=what)
