"""The MCP tools, thin: validate, call the backend through its Protocol, shape the answer.

One module per area; each has a `register(mcp)` that adds its tools.
"""

from mcp.server.mcpserver import MCPServer

from fsm_mcp.tools import customers, dispatch, duplicates, invoices, jobs
from fsm_mcp.tools._schema import publish_plain_output_schemas


def register(mcp: MCPServer) -> None:
    for area in (customers, duplicates, jobs, dispatch, invoices):
        area.register(mcp)
    publish_plain_output_schemas(mcp)
