"""The `fsm-mcp` command, one module per area: serve, keys, demo, import, the customer directory's matching
(duplicates, reindex, identity train), a vendor's sync and check, tools-doc; webhooks and accounting live in their
own packages (events/commands.py, accounting/commands.py). Logs and progress go to stderr."""

from __future__ import annotations

import logging
import sys

import click

# webhooks and accounting import these from here
from fsm_mcp.cli.options import business_option, db_option
from fsm_mcp.cli.options import load_settings as _settings


@click.group()
@click.version_option(package_name="fsm-mcp")
def main() -> None:
    """An MCP server for field-service businesses (HVAC, plumbing, electrical, pest control)."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # httpx logs every request's URL at INFO, and a vendor lookup's URL can carry a name or a number.
    logging.getLogger("httpx2").setLevel(logging.WARNING)


from fsm_mcp.accounting.commands import accounting  # noqa: E402  (the area modules build on the options above)
from fsm_mcp.cli import customers, demo, imports, keys, serve, tools_doc, vendor  # noqa: E402
from fsm_mcp.events.commands import webhooks  # noqa: E402

for command in (serve.serve, keys.keys, demo.demo, imports.import_, customers.duplicates, customers.reindex,
                vendor.sync, vendor.check, customers.identity, tools_doc.tools_doc, webhooks, accounting):
    main.add_command(command)

__all__ = ["_settings", "business_option", "db_option", "main"]
