"""What every command shares: the --db and --business options, loading the settings as a usage error, and a
progress bar on stderr."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from fsm_mcp.settings import Settings

db_option = click.option(
    "--db", "db", envvar="FSM_MCP_DB",
    help="The store: a SQLite file (default: the per-user data directory), or a postgresql:// URL for several replicas.",
)


business_option = click.option(
    "--business", "business", envvar="FSM_MCP_TENANT", metavar="ID",
    help="The business to work on (default: the only one configured).",
)


def load_settings(db: Path | None, business: str | None = None) -> Settings:
    """One business's settings; a wrong setting stops the command with its name."""
    try:
        settings = Settings.load(db=db, business=business)
    except (ValueError, OSError) as exc:
        raise click.UsageError(f"configuration: {exc}") from None
    logging.getLogger().setLevel(settings.log_level)  # FSM_MCP_LOG_LEVEL, or log_level in the file
    return settings


def load_businesses(db: Path | None, business: str | None) -> dict[str, Settings]:
    """Every configured business's settings, or only `business`'s when it is given."""
    from fsm_mcp.settings import load_businesses as load_every

    if business:
        return {business: load_settings(db, business)}
    try:
        every = load_every(db=db)
    except (ValueError, OSError) as exc:
        raise click.UsageError(f"configuration: {exc}") from None
    logging.getLogger().setLevel(next(iter(every.values())).log_level)
    return every


def shared_store_path(db: Path | None) -> Path | str:
    """The store, for commands that span every business."""
    return next(iter(load_businesses(db, None).values())).db_path


class LazyBar:
    """A progress bar on stderr for work whose size is known only once it starts."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None

    def update(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
        self.bar.update(done - self.bar.pos)

    def __enter__(self) -> LazyBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.render_finish()
