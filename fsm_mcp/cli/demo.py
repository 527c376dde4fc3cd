"""`fsm-mcp demo`: a scripted call through a real MCP client, on a demo business of its own."""

from __future__ import annotations

from pathlib import Path

import anyio
import click


@click.command()
@click.option(  # not db_option: the demo never opens the configured store (FSM_MCP_DB is not read)
    "--db", "db", type=click.Path(dir_okay=False, path_type=Path),
    help="Create the demo's SQLite database in this new file and keep it (default: a fresh temporary database, "
    "removed when the demo ends).",
)
def demo(db: Path | None) -> None:
    """Create a demo business and play a scripted call through a real MCP client."""
    from fsm_mcp.demo import run_demo

    anyio.run(run_demo, db)
