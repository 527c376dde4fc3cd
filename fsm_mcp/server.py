"""Builds the MCP server: the lifespan opens the store and the backend once per server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2 as httpx
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import CallToolResult, InputRequiredResult
from pydantic import ValidationError

from fsm_mcp import __version__, tools
from fsm_mcp.app import App
from fsm_mcp.connectors import open_backend
from fsm_mcp.settings import Settings
from fsm_mcp.store.db import Database
from fsm_mcp.store.idempotency import IdempotentWriter
from fsm_mcp.tools._kit import plain_words

log = logging.getLogger("fsm_mcp")

INSTRUCTIONS = """\
Tools for running a field-service business (HVAC, plumbing, electrical, pest control).
On a call: lookup_customer first (the caller ID alone is enough to start), then
find_available_slots, create_job, dispatch_technician; update_job_status as work
progresses; create_invoice once the job is completed. Every write takes an
idempotency_key: reuse it when you retry, and nothing is done twice."""


class FsmServer(MCPServer):
    """The SDK's server, with argument mistakes reported field by field in plain words."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(exc, UnexpectedToolError) or not isinstance(cause, ValidationError):
                raise
            raise ToolError(f"Error executing tool {name}: {plain_words(cause)}") from cause


def build_server(settings: Settings | None = None, transport: httpx.AsyncBaseTransport | None = None) -> MCPServer:
    """`transport` reaches the vendor (tests hand in one to a fake); by default, the network."""
    settings = settings or Settings.load()

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[App]:
        db = Database(settings.db_path)
        log.info("fsm-mcp serving business %r (%s backend) from %s", settings.business.tenant_id, settings.backend,
                 settings.db_path)
        try:
            async with open_backend(settings, db, transport) as backend:
                # The local store's writes join the idempotency transaction; a vendor's cannot.
                yield App(settings=settings, db=db, backend=backend,
                          writer=IdempotentWriter(db, holds=settings.backend == "local"))
        finally:
            db.close()

    mcp = FsmServer(
        "fsm-mcp",
        title="Field service (fsm-mcp)",
        instructions=INSTRUCTIONS,
        version=__version__,
        lifespan=lifespan,
        log_level=settings.log_level,  # type: ignore[arg-type]
    )
    tools.register(mcp, settings.backend)
    return mcp
