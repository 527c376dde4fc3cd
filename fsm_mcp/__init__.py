"""fsm-mcp: an MCP server that lets AI agents run the daily work of a field-service business."""

__version__ = "0.1.0"
