"""Credentials on vendor requests: a fixed API-key header, or OAuth2 client credentials
whose token is refreshed before it expires.

Secrets are kept as `SecretStr` and only ever leave in a request header or the token
request's form body; no message, log line or repr carries them.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio
import httpx2 as httpx
from pydantic import SecretStr

from fsm_mcp.connectors.http.limits import Clock
from fsm_mcp.errors import VendorRejected, VendorUnavailable


class Auth(Protocol):
    async def headers(self) -> dict[str, str]:
        """Headers that authenticate the next request."""
        ...

    async def renew(self, used: dict[str, str]) -> bool:
        """The vendor refused `used` with a 401: renew them if that can help; False if not."""
        ...


class ApiKey:
    def __init__(self, header: str, key: SecretStr) -> None:
        self._header = header
        self._key = key

    async def headers(self) -> dict[str, str]:
        return {self._header: self._key.get_secret_value()}

    async def renew(self, used: dict[str, str]) -> bool:
        return False  # a fixed key refused once is refused again


class ClientCredentials:
    """OAuth2 client-credentials tokens, fetched on first use and again shortly before
    `expires_in` runs out. When many calls find the token stale at once, one fetches and
    the rest wait for it; a 401 on a token renews it once (the vendor may have revoked it
    early), unless another call already did."""

    def __init__(
        self, vendor: str, http: httpx.AsyncClient, token_url: str, client_id: str, client_secret: SecretStr,
        extra: dict[str, str] | None = None, clock: Clock = time.monotonic,
    ) -> None:
        self.vendor = vendor
        self._http = http
        self._url = token_url
        self._form = {"grant_type": "client_credentials", "client_id": client_id}
        self._secret = client_secret
        self._extra = extra or {}
        self._clock = clock
        self._lock = anyio.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    async def headers(self) -> dict[str, str]:
        if self._token is None or self._clock() >= self._renew_at:
            async with self._lock:
                if self._token is None or self._clock() >= self._renew_at:
                    await self._fetch()
        return {"Authorization": f"Bearer {self._token}", **self._extra}

    async def renew(self, used: dict[str, str]) -> bool:
        async with self._lock:
            if used.get("Authorization") == f"Bearer {self._token}":
                await self._fetch()
        return True

    async def _fetch(self) -> None:
        form = {**self._form, "client_secret": self._secret.get_secret_value()}
        try:
            response = await self._http.post(self._url, data=form)
        except httpx.TransportError as exc:
            raise VendorUnavailable(
                f"could not reach {self.vendor}'s sign-in service ({type(exc).__name__}); nothing was sent to "
                f"{self.vendor}. Try again in a minute."
            ) from None
        if response.status_code in (400, 401, 403):
            raise VendorRejected(
                f"{self.vendor} refused fsm-mcp's client id and secret (HTTP {response.status_code}); the business's "
                "administrator must check them (fsm-mcp check tells which setting)", status=response.status_code,
            )
        if response.status_code != 200:
            raise VendorUnavailable(f"{self.vendor}'s sign-in service answered HTTP {response.status_code}; try again in a minute",
                                    status=response.status_code)
        body = response.json()
        lifetime = float(body.get("expires_in", 900))
        self._token = str(body["access_token"])
        # Renew a little early: a token that expires in flight costs a 401 and a second try.
        self._renew_at = self._clock() + lifetime - min(60.0, lifetime * 0.2)
