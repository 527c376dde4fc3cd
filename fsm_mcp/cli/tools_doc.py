"""`fsm-mcp tools-doc`: tools.md from the live tool schemas."""

from __future__ import annotations

from pathlib import Path

import anyio
import click

from fsm_mcp.settings import Settings


@click.command(name="tools-doc")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("tools.md"), show_default=True)
@click.option("--check", is_flag=True, help="Exit 1 when the file differs from the live schemas.")
def tools_doc(output: Path, check: bool) -> None:
    """Write tools.md from the live tool schemas."""
    from fsm_mcp.server import build_server
    from fsm_mcp.tooldoc import render

    text = anyio.run(render, build_server(Settings()))
    if check:
        if not output.exists() or output.read_text() != text:
            raise click.ClickException(f"{output} is stale; run `fsm-mcp tools-doc`")
        return
    output.write_text(text)
    click.echo(f"wrote {output}", err=True)
