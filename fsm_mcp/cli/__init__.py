"""The `fsm-mcp` command, one module per area: serve, keys, demo, import, the customer directory's matching
(duplicates, reindex, identity train), a vendor's sync and check, tools-doc; webhooks and accounting live in their
own packages (events/commands.py, accounting/commands.py). Logs and progress go to stderr."""

from __future__ import annotations

import importlib
import logging
import sys

import click

# webhooks and accounting import these from here
from fsm_mcp.cli.options import business_option, db_option
from fsm_mcp.cli.options import load_settings as _settings

# Each command and the module that defines it. A module is imported when its command is asked for, so that
# `fsm-mcp serve` does not load the books or PostgreSQL's driver, and no area module is imported by this package
# before the options above exist (events/commands.py and accounting/commands.py import them from here).
AREAS = {
    "serve": "fsm_mcp.cli.serve:serve",
    "keys": "fsm_mcp.cli.keys:keys",
    "demo": "fsm_mcp.cli.demo:demo",
    "import": "fsm_mcp.cli.imports:import_",
    "duplicates": "fsm_mcp.cli.customers:duplicates",
    "reindex": "fsm_mcp.cli.customers:reindex",
    "identity": "fsm_mcp.cli.customers:identity",
    "sync": "fsm_mcp.cli.vendor:sync",
    "check": "fsm_mcp.cli.vendor:check",
    "tools-doc": "fsm_mcp.cli.tools_doc:tools_doc",
    "webhooks": "fsm_mcp.events.commands:webhooks",
    "accounting": "fsm_mcp.accounting.commands:accounting",
}


class _ByArea(click.Group):
    """The commands of AREAS, each imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(AREAS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in AREAS:
            return None
        module, name = AREAS[cmd_name].split(":")
        command = getattr(importlib.import_module(module), name)
        assert isinstance(command, click.Command) and command.name == cmd_name, AREAS[cmd_name]
        return command


@click.group(cls=_ByArea)
@click.version_option(package_name="fsm-mcp")
def main() -> None:
    """An MCP server for field-service businesses (HVAC, plumbing, electrical, pest control)."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # httpx logs every request's URL at INFO, and a vendor lookup's URL can carry a name or a number.
    logging.getLogger("httpx2").setLevel(logging.WARNING)


__all__ = ["_settings", "business_option", "db_option", "main"]
