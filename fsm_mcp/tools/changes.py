"""The change feed for clients that cannot hold a stream open (voice platforms): read on from a cursor."""

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

from fsm_mcp.access.callers import needs
from fsm_mcp.events.outbox import DEFAULT_LIMIT, MAX_LIMIT, Page
from fsm_mcp.services import reads
from fsm_mcp.tools._kit import READ, agent_errors, business


def register(mcp: MCPServer) -> None:
    @mcp.tool(annotations=READ, meta=needs("customers:read"))
    @agent_errors
    async def list_changes(
        ctx: Context,
        since: Annotated[str | None, Field(max_length=64, description="The cursor the previous answer gave; leave out "
                                           "the first time to read from the oldest change kept")] = None,
        limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, description="How many changes at most")] = DEFAULT_LIMIT,
    ) -> Page:
        """What changed in the business since your last look: jobs created, moved, completed or canceled,
        technicians assigned, invoices created, payments received, customers created or merged, oldest first,
        each with the ids, statuses, job types and amounts of what it changed. Keep the `cursor` of each answer and pass it as
        `since` next time; while `more` is true, call again at once. Use get_job for a job's full record."""
        return await reads.changes(business(ctx), since, limit)
