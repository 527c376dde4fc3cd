"""OAuth 2 as both accounting vendors run it for an app: the authorization-code grant (a code is
good once, for a while, and only with the redirect URI it was issued for), access tokens that
expire, and refresh tokens that rotate: each refresh answers a new refresh token and the one
presented dies, so a second use of it (a replica that missed the rotation, a retry after a lost
answer) is refused with `invalid_grant` and counted, unless the vendor gives a grace period
(`grace`: Xero's 30 minutes)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote


@dataclass
class Grant:
    """What one consent gave the app: the companies it may reach and the scopes agreed."""
    tenants: tuple[str, ...]
    scope: str
    refresh_token: str | None = None
    refresh_expires: datetime | None = None


@dataclass
class Issued:
    grant: Grant
    access_token: str
    expires_in: int


@dataclass
class Code:
    grant: Grant
    redirect_uri: str
    expires: datetime


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.body = status, {"error": error, "error_description": description}


@dataclass
class Authority:
    client_id: str
    client_secret: str
    now: Callable[[], datetime]
    access_ttl: int  # seconds
    refresh_ttl: int  # seconds
    refresh_needs: str | None = None  # a scope without which no refresh token is issued (Xero's offline_access)
    code_ttl: int = 300
    codes: dict[str, Code] = field(default_factory=dict)
    access: dict[str, tuple[Grant, datetime]] = field(default_factory=dict)
    refresh: dict[str, Grant] = field(default_factory=dict)
    dead_refresh_uses: int = 0  # refresh tokens presented after they had been rotated out
    refreshes: int = 0
    # Seconds a rotated-out refresh token still works (Xero: 30 minutes, "in case the response with the new
    # tokens is lost"; Intuit documents none): its use is counted in `grace_uses`, not as a dead token.
    grace: int = 0
    retired: dict[str, tuple[Grant, datetime]] = field(default_factory=dict)
    grace_uses: int = 0

    def authorize(self, client_id: str, redirect_uri: str, tenants: tuple[str, ...], scope: str) -> str:
        """The user consented: a code for the app to exchange at the token endpoint."""
        if client_id != self.client_id:
            raise OAuthError(400, "invalid_client", "Unknown client_id.")
        if not redirect_uri:
            raise OAuthError(400, "invalid_request", "redirect_uri is required.")
        code = secrets.token_urlsafe(24)
        self.codes[code] = Code(Grant(tenants, scope), redirect_uri, self.now() + timedelta(seconds=self.code_ttl))
        return code

    def issue(self, grant: Grant) -> Issued:
        token = secrets.token_urlsafe(32)
        self.access[token] = (grant, self.now() + timedelta(seconds=self.access_ttl))
        if self.refresh_needs is None or self.refresh_needs in grant.scope.split():
            if grant.refresh_token:
                self.refresh.pop(grant.refresh_token, None)
                if self.grace:
                    self.retired[grant.refresh_token] = (grant, self.now() + timedelta(seconds=self.grace))
            grant.refresh_token = secrets.token_urlsafe(32)
            grant.refresh_expires = self.now() + timedelta(seconds=self.refresh_ttl)
            self.refresh[grant.refresh_token] = grant
        return Issued(grant, token, self.access_ttl)

    def token(self, form: dict[str, str], authorization: str) -> Issued:
        """The token endpoint: client authentication (HTTP Basic, or the form's client_id and
        client_secret), then the authorization_code or refresh_token grant."""
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if authorization.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
                client_id, secret = unquote(client_id), unquote(secret)
            except ValueError:
                raise OAuthError(401, "invalid_client", "The Basic credentials could not be read.") from None
        if client_id != self.client_id or not secrets.compare_digest(secret, self.client_secret):
            raise OAuthError(401, "invalid_client", "Client authentication failed.")
        kind = form.get("grant_type")
        if kind == "authorization_code":
            code = self.codes.pop(form.get("code", ""), None)
            if code is None or code.expires < self.now():
                raise OAuthError(400, "invalid_grant", "The authorization code is unknown, used or expired.")
            if form.get("redirect_uri") != code.redirect_uri:
                raise OAuthError(400, "invalid_grant", "redirect_uri differs from the one the code was issued for.")
            return self.issue(code.grant)
        if kind == "refresh_token":
            presented = form.get("refresh_token", "")
            grant = self.refresh.get(presented)
            if grant is None and presented in self.retired and self.retired[presented][1] >= self.now():
                grant = self.retired[presented][0]
                self.grace_uses += 1
            if grant is None or grant.refresh_expires is None or grant.refresh_expires < self.now():
                self.dead_refresh_uses += 1
                raise OAuthError(400, "invalid_grant", "The refresh token is invalid, expired or already used.")
            self.refreshes += 1
            return self.issue(grant)
        raise OAuthError(400, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token.")

    def bearer(self, authorization: str) -> Grant | None:
        """The grant behind a live access token, or None (missing, unknown or expired)."""
        if not authorization.lower().startswith("bearer "):
            return None
        found = self.access.get(authorization[7:].strip())
        if found is None or found[1] <= self.now():
            return None
        return found[0]

    def answer(self, issued: Issued, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"access_token": issued.access_token, "expires_in": issued.expires_in, **extra}
        if issued.grant.refresh_token:
            body["refresh_token"] = issued.grant.refresh_token
        return body
