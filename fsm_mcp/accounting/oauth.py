"""OAuth 2 with the books: the authorization code once (`fsm-mcp accounting connect`), then access tokens
from a refresh token that the vendor rotates on every use (Intuit and Xero both do).

The tokens live in the store, encrypted with Fernet (AES-128-CBC with HMAC-SHA256, from the `cryptography`
package) under a key from the environment or a file the administrator points to. The store's copy is the
only one that matters: every replica reads it, and one at a time refreshes it (a claim on the grant's row,
see fsm_mcp/store/accounting.py). The new refresh token replaces the old in the same conditional update
that releases the claim, so a rotated-out token is never used again, here or elsewhere. No token appears in
a message, a log line or a repr.
"""

from __future__ import annotations

import base64
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import anyio
import httpx2 as httpx
from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

from fsm_mcp.errors import VendorRejected, VendorUnavailable
from fsm_mcp.store import Store
from fsm_mcp.store import accounting as sql
from fsm_mcp.store.leases import PROCESS

log = logging.getLogger("fsm_mcp")
CLAIM = timedelta(seconds=60)  # longer than a token request can take (its timeout is 10 s)
EARLY = 120  # seconds: renew this long before an access token runs out (at most a fifth of its life)
WAIT = 30.0  # seconds to wait for another replica's refresh


class Sealer:
    """Encrypts tokens for the store and opens them again."""

    def __init__(self, key: SecretStr) -> None:
        try:
            self._fernet = Fernet(key.get_secret_value().encode())
        except ValueError:
            raise VendorRejected("FSM_MCP_ACCOUNTING_TOKEN_KEY is not a Fernet key (32 bytes, urlsafe base64); "
                                 "make one with: fsm-mcp accounting key") from None

    def seal(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise VendorRejected("the stored accounting tokens do not open with FSM_MCP_ACCOUNTING_TOKEN_KEY (the key "
                                 "changed?); set the old key back, or connect again: fsm-mcp accounting connect") from None

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode()


def basic(client_id: str, secret: SecretStr) -> str:
    pair = f"{quote(client_id, safe='')}:{quote(secret.get_secret_value(), safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


async def token_request(vendor: str, http: httpx.AsyncClient, url: str, client_id: str, secret: SecretStr,
                        form: dict[str, str]) -> dict[str, Any]:
    try:
        response = await http.post(url, data=form, headers={"Authorization": basic(client_id, secret),
                                                             "Accept": "application/json"})
    except httpx.TransportError as exc:
        raise VendorUnavailable(f"could not reach {vendor}'s sign-in service ({type(exc).__name__}); try again in a "
                                "minute") from None
    if response.status_code in (400, 401):
        error = _error(response)
        raise VendorRejected(f"{vendor} refused fsm-mcp's grant ({error}); the administrator must connect the books "
                             "again: fsm-mcp accounting connect", status=response.status_code)
    if response.status_code != 200:
        raise VendorUnavailable(f"{vendor}'s sign-in service answered HTTP {response.status_code}; try again in a minute",
                                status=response.status_code)
    body = response.json()
    if not body.get("access_token") or not body.get("refresh_token"):
        raise VendorRejected(f"{vendor} answered the token request without a refresh token (is offline access "
                             "granted?); connect again: fsm-mcp accounting connect")
    return dict(body)


def _error(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error") or f"HTTP {response.status_code}")
    except (ValueError, AttributeError):
        return f"HTTP {response.status_code}"


async def store_answer(db: Store, tenant: str, provider: str, company: str, sealer: Sealer,
                       answer: dict[str, Any]) -> None:
    """A token answer (from the code exchange) as the business's grant."""
    now = db.clock.now()
    until = now + renew_after(answer)
    await db.awrite(sql.save_grant, tenant, provider, company, sealer.seal(str(answer["refresh_token"])),
                    sealer.seal(str(answer["access_token"])), until, now)


def renew_after(answer: dict[str, Any]) -> timedelta:
    """When to renew a token answer's access token: a little before it runs out (one expiring in flight costs a
    401 and a second try). The store keeps this moment, not the vendor's expiry."""
    life = int(answer.get("expires_in", 1800))
    return timedelta(seconds=life - min(EARLY, life * 0.2))


class Grant:
    """The `Auth` of the HTTP kit over the stored grant of (tenant, provider)."""

    def __init__(self, db: Store, tenant: str, provider: str, vendor: str, http: httpx.AsyncClient, token_url: str,
                 client_id: str, client_secret: SecretStr, sealer: Sealer, extra: dict[str, str] | None = None,
                 holder: str | None = None) -> None:
        self.db, self.tenant, self.provider, self.vendor = db, tenant, provider, vendor
        self._http, self._url, self._client_id, self._secret = http, token_url, client_id, client_secret
        # Each grant object its own holder: two sinks of one process must not take each other's claim for theirs.
        self._sealer, self._extra, self._holder = sealer, extra or {}, holder or f"{PROCESS}:{uuid.uuid4().hex[:8]}"
        self._lock = anyio.Lock()
        self._token: str | None = None
        self._until: datetime | None = None
        self._version = 0
        self._refused: tuple[int, VendorRejected] | None = None  # (the grant's version, the vendor's refusal of it)
        self.refreshes = 0  # done by this process, for tests and benchmarks

    def __repr__(self) -> str:
        return f"Grant({self.vendor}, {self.tenant})"

    async def headers(self) -> dict[str, str]:
        if self._token is None or self._until is None or self.db.clock.now() >= self._until:
            async with self._lock:
                if self._token is None or self._until is None or self.db.clock.now() >= self._until:
                    await self._fresh(force=False)
        return {"Authorization": f"Bearer {self._token}", **self._extra}

    async def renew(self, used: dict[str, str]) -> bool:
        async with self._lock:
            if used.get("Authorization") == f"Bearer {self._token}":
                await self._fresh(force=True)
        return True

    async def _fresh(self, force: bool) -> None:
        """A live access token from the store, or one refresh (by this process if it wins the claim)."""
        with anyio.fail_after(WAIT + 15):
            while True:
                now = self.db.clock.now()
                row = await self.db.aread(sql.load_grant, self.tenant, self.provider)
                if row is None:
                    raise VendorRejected(f"{self.vendor} is not connected for this business; the administrator must "
                                         "run: fsm-mcp accounting connect")
                newer = row.version != self._version
                if row.access_token and row.access_until and row.access_until > now and (not force or newer):
                    self._take(row.access_token, row.access_until, row.version)
                    return
                if self._refused is not None and self._refused[0] == row.version:
                    # Asked once already: only a new grant (connect again) can change the answer.
                    raise VendorRejected(str(self._refused[1]), status=self._refused[1].status)
                if row.claimed_by not in (None, self._holder) and row.claimed_until and row.claimed_until > now:
                    await anyio.sleep(0.2)  # another replica is refreshing: its tokens will be in the row
                    continue
                if await self.db.awrite(sql.claim_refresh, self.tenant, self.provider, row.version, self._holder,
                                        now, now + CLAIM):
                    await self._refresh(row)
                    return

    async def _refresh(self, row: sql.GrantRow) -> None:
        try:
            answer = await token_request(self.vendor, self._http, self._url, self._client_id, self._secret,
                                         {"grant_type": "refresh_token",
                                          "refresh_token": self._sealer.open(row.refresh_token)})
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await self.db.awrite(sql.release_claim, self.tenant, self.provider, self._holder)
            if isinstance(exc, VendorRejected) and exc.status in (400, 401):  # invalid_grant: not asked again
                self._refused = (row.version, exc)
            raise
        now = self.db.clock.now()
        until = now + renew_after(answer)
        access = self._sealer.seal(str(answer["access_token"]))
        with anyio.CancelScope(shield=True):  # the vendor has rotated: the new refresh token must be kept
            kept = await self.db.awrite(sql.rotate, self.tenant, self.provider, row.version, self._holder,
                                        self._sealer.seal(str(answer["refresh_token"])), access, until, now)
        if not kept:
            log.warning("%s: the claim on the accounting grant lapsed during a refresh; the new tokens were not "
                        "kept and the books may need connecting again", self.vendor)
        self.refreshes += 1
        self._take(access, until, row.version + 1)

    def _take(self, sealed: str, until: datetime, version: int) -> None:
        self._token, self._until, self._version = self._sealer.open(sealed), until, version
