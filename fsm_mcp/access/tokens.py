"""Checking the bearer credential of an HTTP request: an API key of ours, or (when an OAuth
issuer is configured) a JWT access token from it.

A JWT is accepted only when its signature verifies with one of the issuer's published keys
(JWKS), and its issuer, audience (this server's URL, RFC 8707), expiry and subject are right.
Its scopes come from `scope` (space-separated) or `scp`; its business from the configured
claim. The token is never passed on to a vendor: vendors are reached with the business's own
credentials.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from typing import Any

import httpx2 as httpx
import jwt
from mcp.server.auth.provider import AccessToken

from fsm_mcp.access import keys
from fsm_mcp.access.callers import SCOPES, Caller
from fsm_mcp.access.config import AccessSettings
from fsm_mcp.store import Store

log = logging.getLogger("fsm_mcp.access")

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]  # never "none" or a shared secret


class Verifier:
    """The SDK's `TokenVerifier`: a credential in, the caller it proves out (as an `AccessToken`), or None."""

    def __init__(self, db: Store, businesses: Collection[str], settings: AccessSettings,
                 http: httpx.AsyncClient | None = None) -> None:
        self.db = db
        self.businesses = list(businesses)
        self.issuer = Issuer(settings, http or httpx.AsyncClient(timeout=10)) if settings.oauth else None
        self._proofs: dict[Caller, AccessToken] = {}  # one immutable answer per caller: no model built per request

    async def verify_token(self, token: str) -> AccessToken | None:
        if token.startswith(keys.PREFIX):
            caller = await keys.caller(self.db, token)
        elif self.issuer is not None:
            caller = await self.issuer.caller(token, only=self.businesses[0] if len(self.businesses) == 1 else None)
        else:
            caller = None
        if caller is None:
            return None
        if caller.business is not None and caller.business not in self.businesses:
            log.warning("refused %s: its business %r is not served here", caller.identity, caller.business)
            return None
        if (proof := self._proofs.get(caller)) is None:
            proof = AccessToken(token="[not kept]", client_id=caller.identity, scopes=sorted(caller.scopes),
                                subject=caller.identity, claims={"identity": caller.identity, "business": caller.business})
            if len(self._proofs) < 10_000:
                self._proofs[caller] = proof
        return proof


class Issuer:
    """One OAuth authorization server: its published keys, fetched once and again for a key id not seen
    (a key rotation), at most once a minute."""

    REFETCH_AFTER = 60.0

    def __init__(self, settings: AccessSettings, http: httpx.AsyncClient) -> None:
        self.issuer = str(settings.oauth_issuer)
        self.jwks_url = str(settings.oauth_jwks_url)
        resource = str(settings.resource_url)
        self.audiences = [resource, resource.rstrip("/"), resource.rstrip("/") + "/"]
        self.business_claim = settings.business_claim
        self.http = http
        self._keys: dict[str, Any] = {}
        self._fetched_at = -float("inf")

    async def caller(self, token: str, only: str | None) -> Caller | None:
        """`only`: the business of a caller whose token names none (when the server serves just one)."""
        try:
            key = await self._key(jwt.get_unverified_header(token).get("kid"))
            if key is None:
                return None
            claims = jwt.decode(token, key, algorithms=ALGORITHMS, audience=self.audiences, issuer=self.issuer,
                                options={"require": ["exp", "iss", "aud", "sub"]}, leeway=30)
        except jwt.PyJWTError as exc:
            log.info("refused a bearer token: %s", exc)
            return None
        scopes = claims.get("scope", "").split() if isinstance(claims.get("scope"), str) else claims.get("scp", [])
        business = claims.get(self.business_claim) or only
        if business is None:
            log.warning("refused the token of %r: it names no business (claim %r)", claims["sub"], self.business_claim)
            return None
        return Caller(f"oauth:{claims['sub']}", str(business), frozenset(set(scopes) & SCOPES.keys()))

    async def _key(self, kid: str | None) -> Any:
        if kid not in self._keys and time.monotonic() - self._fetched_at > self.REFETCH_AFTER:
            self._fetched_at = time.monotonic()
            try:
                answer = await self.http.get(self.jwks_url)
                answer.raise_for_status()
                found = jwt.PyJWKSet.from_dict(answer.json())
            except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
                log.warning("could not read the issuer's keys from %s: %s", self.jwks_url, exc)
                return None
            self._keys = {k.key_id or f"#{i}": k.key for i, k in enumerate(found.keys)}
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid) if kid is not None else None
