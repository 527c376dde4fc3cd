"""A baseline: the same SDK, stdio transport and structured output, with a tool that does nothing."""

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel

mcp = MCPServer("trivial")


class Echo(BaseModel):
    phone: str


@mcp.tool()
async def echo(phone: str) -> Echo:
    """Return the argument."""
    return Echo(phone=phone)


if __name__ == "__main__":
    mcp.run("stdio")
