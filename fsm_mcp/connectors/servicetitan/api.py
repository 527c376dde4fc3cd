"""ServiceTitan's v2 tenant API: where each thing lives, on the shared HTTP kit.

Every path is /{module}/v2/tenant/{tenant}/...; every call carries a bearer token from the
client-credentials flow and the ST-App-Key header. Lists page with page/pageSize/hasMore.
"""

from __future__ import annotations

from typing import Any

import httpx2 as httpx

from fsm_mcp.connectors.http.auth import ClientCredentials
from fsm_mcp.connectors.http.client import Check, Policy, VendorClient
from fsm_mcp.connectors.http.lanes import Lanes, LocalLanes
from fsm_mcp.connectors.http.limits import Breaker
from fsm_mcp.connectors.http.paging import SERVICETITAN, collect
from fsm_mcp.connectors.servicetitan.config import ServiceTitanSettings

VENDOR = "ServiceTitan"
Json = dict[str, Any]


def describe(response: httpx.Response) -> str:
    """An ApiErrorResponse as one line: its title and each field's complaint."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if not isinstance(body, dict):  # a gateway or proxy in front of ServiceTitan may answer anything
        return f"HTTP {response.status_code}"
    errors = body.get("errors") or {}
    if isinstance(errors, dict):
        detail = "; ".join(f"{field}: {' '.join(map(str, msgs if isinstance(msgs, list) else [msgs]))}"
                           for field, msgs in errors.items())
    else:
        detail = "; ".join(map(str, errors if isinstance(errors, list) else [errors]))
    return f"{body.get('title') or f'HTTP {response.status_code}'}" + (f" ({detail})" if detail else "")


class ServiceTitanApi:
    def __init__(self, settings: ServiceTitanSettings, http: httpx.AsyncClient, policy: Policy | None = None,
                 lanes: Lanes | None = None) -> None:
        self.settings = settings
        self.tenant = settings.tenant_id
        auth = ClientCredentials(VENDOR, http, settings.auth_url.rstrip("/") + "/connect/token", settings.client_id,
                                 settings.client_secret, extra={"ST-App-Key": settings.app_key.get_secret_value()})
        # ServiceTitan limits each app per tenant: one lane per tenant, whichever business or replica sends.
        lane = (lanes or LocalLanes()).lane(VENDOR, self.tenant, settings.rate)
        if (watch := getattr(lane, "watch", None)) is not None:  # a Redis lane counts by its answers
            watch(http)
        self.client = VendorClient(VENDOR, http, auth, lane, Breaker(VENDOR), policy, describe)

    def path(self, module: str, rest: str) -> str:
        return f"/{module}/v2/tenant/{self.tenant}/{rest}"

    async def get(self, module: str, rest: str, params: dict[str, Any] | None = None, budget: float | None = None) -> Any:
        return await self.client.get(self.path(module, rest), params, budget=budget)

    async def all(self, module: str, rest: str, params: dict[str, Any] | None = None, size: int | None = None) -> list[Json]:
        return await collect(self.client, self.path(module, rest), params or {}, SERVICETITAN, size)

    async def write(self, method: str, module: str, rest: str, body: Any = None, *, check: Check | None = None,
                    what: str = "the change") -> Any:
        return await self.client.write(method, self.path(module, rest), json=body, check=check, what=what)

    async def ids(self, module: str, rest: str, ids: list[int], param: str = "ids") -> list[Json]:
        """Records by id (or by `param`, another id list), 50 ids to a request (the API's most)."""
        found: list[Json] = []
        for start in range(0, len(ids), 50):
            found += await self.all(module, rest, {param: ",".join(str(i) for i in ids[start:start + 50])})
        return found
