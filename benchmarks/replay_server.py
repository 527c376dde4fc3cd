"""The ceiling for lookup_customer over stdio: the same tool, schema and answer, with no work.

    python benchmarks/replay_server.py RESULT.json

Serves a `lookup_customer` that returns the recorded structured result at once, through
the same output model and published schema as fsm-mcp. Its rate against the trivial tool
shows what the answer's size and its client-side schema check cost on their own.
"""

import json
import sys
from pathlib import Path

from mcp.server.mcpserver import MCPServer

from fsm_mcp.tools._schema import publish_plain_output_schemas
from fsm_mcp.tools.customers import LookupResult

mcp = MCPServer("replay")
RECORDED = LookupResult.model_validate(json.loads(Path(sys.argv[1]).read_text()))


@mcp.tool()
async def lookup_customer(phone: str) -> LookupResult:
    """Return the recorded lookup."""
    return RECORDED


if __name__ == "__main__":
    publish_plain_output_schemas(mcp)
    mcp.run("stdio")
