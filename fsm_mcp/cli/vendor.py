"""`fsm-mcp sync` and `check`: a field-service vendor's directory and settings."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import click

from fsm_mcp.cli.options import business_option, db_option, load_settings
from fsm_mcp.settings import Settings


def _vendor(db: Path | None, business: str | None) -> Settings:
    settings = load_settings(db, business)
    if settings.backend == "local":
        raise click.UsageError("the local backend has nothing to check or sync; set FSM_MCP_BACKEND=servicetitan, fieldpulse "
                               "or housecallpro (or backend in the configuration file) and its settings")
    return settings


@click.command()
@business_option
@db_option
def sync(business: str | None, db: Path | None) -> None:
    """Bring the customer directory up to date from the vendor (the server also does it in the background).
    A first sync interrupted part-way resumes where it stopped."""
    from fsm_mcp.connectors import open_backend
    from fsm_mcp.errors import FsmError
    from fsm_mcp.store import open_store, shown

    settings = _vendor(db, business)
    bars: dict[str, Any] = {}  # one bar for every list of a first sync: several are read at once
    done_of: dict[str, int] = {}
    total_of: dict[str, int] = {}

    def progress(resource: str, done: int, total: int | None) -> None:
        if total is None:  # changes since the last sync: their number is not known ahead; the summary tells
            return
        done_of[resource], total_of[resource] = done, total
        if not bars:
            bars["all"] = click.progressbar(length=total, label="syncing the directory", file=sys.stderr, show_pos=True)
        bar = bars["all"]
        bar.length = max(sum(total_of.values()), sum(done_of.values()))
        bar.update(sum(done_of.values()) - bar.pos)

    async def run() -> Any:
        database = open_store(settings.db_path)
        try:
            async with open_backend(settings, database, background=False) as backend:
                return await backend.sync.run(progress)  # type: ignore[attr-defined]
        finally:
            database.close()

    try:
        report = anyio.run(run)
    except FsmError as exc:
        raise click.ClickException(f"sync stopped: {exc} Run it again to resume.") from None
    finally:
        for bar in bars.values():
            bar.render_finish()
    click.echo(", ".join(f"{n} {name}" for name, n in report.stored.items()) + f" stored ({shown(settings.db_path)})", err=True)


@click.command()
@business_option
@db_option
def check(business: str | None, db: Path | None) -> None:
    """Verify the vendor credentials and settings and print what the connector resolved (tenant, business
    units, job types with their skills, technicians, campaign) as JSON. Writes nothing; exits 1 with the reason
    when something is wrong."""
    from fsm_mcp.connectors import open_backend
    from fsm_mcp.errors import FsmError
    from fsm_mcp.store import open_store

    settings = _vendor(db, business)

    async def run() -> Any:
        database = open_store(settings.db_path)
        try:
            async with open_backend(settings, database, background=False) as backend:
                return await backend.check()  # type: ignore[attr-defined]
        finally:
            database.close()

    try:
        resolved = anyio.run(run)
    except FsmError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(resolved, indent=2, sort_keys=True))
