"""The gate every MCP message passes: it names the caller for the tools, hides from tools/list
the tools the caller's scopes do not allow, describes the rest as the caller's own business's
backend works, refuses a hidden tool if called anyway, and applies the caller's rate limits.
An SDK middleware, so it sees every transport alike."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent

from fsm_mcp.access.callers import SCOPE_META, Caller, acting_as, done_acting
from fsm_mcp.access.limits import CallerLimits

log = logging.getLogger("fsm_mcp.access")

Describe = Callable[[dict[str, Any], str], dict[str, Any]]  # a tools/list entry, the caller's backend -> as listed


class Gate:
    def __init__(self, server: MCPServer, local: Caller, limits: CallerLimits, businesses: Mapping[str, str],
                 read_only: bool = False, describe: Describe | None = None) -> None:
        self.server = server
        self.read_only = read_only  # the server was started read-only: no caller gets more than the read scopes
        self.local = local  # who a message without credentials is: the local user, or NOBODY (HTTP with auth)
        self.limits = limits
        self.businesses = businesses  # business id -> its backend; the first is the default business
        self.default = next(iter(businesses))
        self.describe = describe or (lambda tool, _backend: tool)

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        caller = self._caller(ctx)
        token = acting_as(caller)
        try:
            if ctx.method == "tools/list":
                result = await call_next(ctx)  # serialised by the SDK: a dict, tools with their `_meta`
                if isinstance(result, dict):
                    backend = self.businesses.get(caller.business or self.default, "local")
                    result["tools"] = [self.describe(t, backend) for t in result.get("tools", [])
                                       if caller.may(_scope(t.get("_meta") or {}))]
                return result
            if ctx.method == "tools/call" and (refusal := await self._refusal(ctx, caller)):
                log.info("refused %s to %s: %s", (ctx.params or {}).get("name"), caller.identity, refusal)
                return _refuse(refusal)
            return await call_next(ctx)
        finally:
            done_acting(token)

    def _caller(self, ctx: ServerRequestContext[Any, Any]) -> Caller:
        request = ctx.request
        user = request.scope.get("user") if request is not None and hasattr(request, "scope") else None
        caller = Caller.of_token(user.access_token) if isinstance(user, AuthenticatedUser) else self.local
        return caller.read_only() if self.read_only else caller

    async def _refusal(self, ctx: ServerRequestContext[Any, Any], caller: Caller) -> str | None:
        name = str((ctx.params or {}).get("name", ""))
        tool = self.server._tool_manager.get_tool(name)  # the SDK has no public lookup of one tool
        if tool is None:
            return None  # the SDK answers an unknown tool
        scope = _scope(tool.meta or {})
        if not caller.may(scope):
            return (f"{name} needs the {scope} scope, which this caller ({caller.identity}) does not have. "
                    "Ask the server's operator for a key with it; nothing was done.")
        if caller.business is not None and caller.business not in self.businesses:
            return f"This caller's business {caller.business!r} is not served here."
        writes = not (tool.annotations is not None and tool.annotations.read_only_hint)
        return await self.limits.refusal(caller, writes)


def _scope(meta: dict[str, Any]) -> str | None:
    value = meta.get(SCOPE_META)
    return str(value) if value else None


def _refuse(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
