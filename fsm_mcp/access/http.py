"""The streamable HTTP app: the SDK's /mcp endpoint behind authentication, with Host and Origin
checked whatever address it is bound to, a request size limit and sessions bounded in all, per
caller and per business (`sessions.py`).

Every request to /mcp must carry `Authorization: Bearer <API key or OAuth token>`; one without,
or with an unknown, revoked, expired or wrong-audience credential, gets 401 and a
`WWW-Authenticate: Bearer` header (naming the Protected Resource Metadata document when OAuth
is configured, as the MCP authorization spec asks). `--no-auth` (this machine only) skips it.

`/webhooks/<vendor>/<business>[/<secret>]` (`events/vendor_hooks.py`) is never authenticated by these
credentials: by the vendor's signature or the business's secret in the path; so are the books'
`/webhooks/quickbooks/<business>` and `/webhooks/xero/<business>` (`accounting/webhooks.py`).
"""

from __future__ import annotations

from typing import Any

from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
from mcp.server.auth.routes import build_resource_metadata_url, create_protected_resource_routes
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from fsm_mcp.access.callers import SCOPES
from fsm_mcp.access.config import AccessSettings
from fsm_mcp.access.sessions import SessionCaps
from fsm_mcp.access.tokens import Verifier
from fsm_mcp.accounting import webhooks as accounting_hooks
from fsm_mcp.events import vendor_hooks

PATH = "/mcp"
LOOPBACK_HOSTS = ["127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*"]
LOOPBACK_ORIGINS = ["http://127.0.0.1", "http://127.0.0.1:*", "http://localhost", "http://localhost:*",
                    "http://[::1]", "http://[::1]:*"]


def http_app(server: MCPServer, settings: AccessSettings, verifier: Verifier | None) -> Starlette:
    """`verifier` None: no authentication (the CLI allows it on a loopback address only)."""
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*LOOPBACK_HOSTS, *settings.allowed_hosts],
        allowed_origins=[*LOOPBACK_ORIGINS, *settings.allowed_origins],
    )
    app = server.streamable_http_app(
        streamable_http_path=PATH, stateless_http=settings.stateless, max_request_body_size=settings.max_request_bytes,
        session_idle_timeout=settings.session_idle_timeout, max_sessions=settings.max_sessions,
        transport_security=security,
    )
    if not settings.stateless:  # innermost of ours: it reads the caller the authentication found
        app.add_middleware(SessionCaps, server=server, path=PATH, per_caller=settings.max_sessions_per_caller,
                           per_business=settings.max_sessions_per_business, idle_timeout=settings.session_idle_timeout)
    app.router.routes.extend(vendor_hooks.routes(lambda vendor, business: _inbound(server, vendor, business)))
    app.router.routes.extend(accounting_hooks.routes(lambda business, provider: _books(server, business, provider)))
    if verifier is None:
        return app
    metadata_url = None
    if settings.resource_url is not None and settings.oauth_issuer is not None:
        metadata_url = build_resource_metadata_url(settings.resource_url)
        app.router.routes.extend(create_protected_resource_routes(
            resource_url=settings.resource_url, authorization_servers=[settings.oauth_issuer],
            scopes_supported=list(SCOPES), resource_name="fsm-mcp"))
    # add_middleware puts each outside the ones before: credentials are read first, then required on /mcp.
    app.add_middleware(RequireCaller, metadata_url=metadata_url)
    app.add_middleware(AuthContextMiddleware)
    app.add_middleware(AuthenticationMiddleware, backend=BearerAuthBackend(verifier))
    return app


def _inbound(server: MCPServer, vendor: str, business: str) -> vendor_hooks.Inbound | None:
    """The business's webhooks from `vendor`, while the server runs; None: it takes none."""
    served = getattr(server, "served", None)
    one = served.by_id.get(business) if served is not None else None
    backend = one.backend if one is not None else None
    if str(getattr(backend, "vendor", "")).lower() != vendor:
        return None
    return getattr(backend, "inbound", None)


def _books(server: MCPServer, business: str, provider: str) -> Any:
    """The business's accounting sink if its books are `provider`'s, while the server runs; else None."""
    sink = getattr(server, "books", {}).get(business)
    return sink if sink is not None and sink.provider == provider else None


class RequireCaller:
    """401 for a request to /mcp without a proven caller; the metadata document stays public."""

    def __init__(self, app: ASGIApp, metadata_url: Any) -> None:
        self.app = app
        self.guard = RequireAuthMiddleware(app, [], metadata_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].rstrip("/") == PATH:
            await self.guard(scope, receive, send)
        else:
            await self.app(scope, receive, send)

