"""Open HTTP sessions capped per caller and per business, inside the SDK's one pool per process
(`max_sessions`): one key opening sessions in a loop fills its own share, and every other caller
and business still gets in.

A request without `Mcp-Session-Id` asks for a new session. It is counted against its caller and
business while it is served, and kept once the SDK answers it with a session id; a session the SDK
no longer holds (ended by DELETE, closed when idle, or crashed) gives its slot back. Past a cap the
answer is 429, not the pool's 503: the condition belongs to this caller, not to the server (RFC 6585
against RFC 9110 §15.6.4), and a proxy that takes a run of 5xx for a sick replica must not eject a
healthy one because one key misbehaves. The MCP transport names no status for it."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Container

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp_types import INVALID_REQUEST, ErrorData, JSONRPCError
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fsm_mcp.access.callers import Caller

log = logging.getLogger("fsm_mcp.access")

ANONYMOUS = Caller("anonymous", None, frozenset())  # who a request is under --no-auth (this machine only)


class SessionCaps:
    def __init__(self, app: ASGIApp, server: MCPServer, path: str, per_caller: int, per_business: int,
                 idle_timeout: float) -> None:
        self.app = app
        self.server = server
        self.path = path
        self.per_caller = per_caller
        self.per_business = per_business
        self.idle_timeout = idle_timeout
        self._owners: dict[str, tuple[str, str]] = {}  # session id -> (caller, business)
        self._opening: Counter[tuple[str, str]] = Counter()  # opening requests being served, by (caller, business)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._opens_a_session(scope):
            await self.app(scope, receive, send)
            return
        user = scope.get("user")
        caller = Caller.of_token(user.access_token) if isinstance(user, AuthenticatedUser) else ANONYMOUS
        owner = (caller.identity, caller.business or "")
        if refusal := self._refusal(owner):  # counted and reserved with no await between: no lock needed
            log.warning("refused a new session to %s: %s", caller.identity, refusal)
            await _too_many(refusal)(scope, receive, send)
            return
        self._opening[owner] += 1
        opening = True

        def opened() -> None:
            nonlocal opening
            if opening:
                opening = False
                self._opening[owner] -= 1
                if not self._opening[owner]:
                    del self._opening[owner]

        async def keep_its_id(message: Message) -> None:
            if (message["type"] == "http.response.start" and message["status"] < 400
                    and (session_id := Headers(raw=message.get("headers", [])).get(MCP_SESSION_ID_HEADER))):
                # Held as the session from here on, no longer as a request opening one: counted once, not twice
                # while the answer's stream finishes (a client's next request may arrive before it has).
                self._owners[session_id] = owner
                opened()
            await send(message)

        try:
            await self.app(scope, receive, keep_its_id)
        finally:
            opened()

    def _opens_a_session(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope["path"].rstrip("/") != self.path:
            return False
        headers = Headers(scope=scope)
        version = headers.get(MCP_PROTOCOL_VERSION_HEADER)
        # As the SDK routes them: a request of a sessionless protocol version never opens one.
        return MCP_SESSION_ID_HEADER not in headers and (version is None or version in HANDSHAKE_PROTOCOL_VERSIONS)

    def _refusal(self, owner: tuple[str, str]) -> str | None:
        live = _open_sessions(self.server)
        for gone in [s for s in self._owners if s not in live]:
            del self._owners[gone]
        held = [*self._owners.values(), *self._opening.elements()]
        ending = (f"End one (HTTP DELETE with its {MCP_SESSION_ID_HEADER}) or wait until one has been idle "
                  f"{self.idle_timeout:g} s.")
        if sum(1 for o in held if o[0] == owner[0]) >= self.per_caller:
            return (f"Too many open sessions for this caller ({owner[0]}): at most {self.per_caller} at once "
                    f"(max_sessions_per_caller). {ending}")
        if sum(1 for o in held if o[1] == owner[1]) >= self.per_business:
            return (f"Too many open sessions for this caller's business: at most {self.per_business} at once "
                    f"(max_sessions_per_business). {ending}")
        return None


def _open_sessions(server: MCPServer) -> Container[str]:
    # The SDK publishes no list of the sessions it holds; reading its own record means a session counts exactly
    # as long as the SDK keeps it, however it ends. Only read, never changed.
    return server.session_manager._server_instances


def _too_many(message: str) -> Response:
    body = JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(code=INVALID_REQUEST, message=message))
    return Response(body.model_dump_json(by_alias=True, exclude_unset=True), status_code=429,
                    media_type="application/json")
