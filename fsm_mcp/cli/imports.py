"""`fsm-mcp import customers|technicians`: CSV files into the store."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from fsm_mcp.cli.options import business_option, db_option, load_settings


@click.group(name="import")
def import_() -> None:
    """Import customers or technicians from CSV."""


encoding_option = click.option(
    "--encoding", default="utf-8", show_default=True,
    help="The file's text encoding, e.g. cp1252 or latin-1 for a file from Excel or an older system (UTF-8 may "
    "start with a byte-order mark).",
)


def _run_import(kind: str, file: Path, db: Path | None, business: str | None, encoding: str) -> None:
    from fsm_mcp.importer import BadFile, count_rows, import_customers, import_technicians
    from fsm_mcp.store import open_store, shown

    settings = load_settings(db, business)
    database = open_store(settings.db_path)
    run = import_customers if kind == "customers" else import_technicians
    try:
        with click.progressbar(length=count_rows(file), label=f"importing {kind}", file=sys.stderr) as bar:
            report = run(database, settings.business, file, bar.update, encoding)
    except BadFile as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        database.close()
    for line, reason in report.rejected[:50]:
        click.echo(f"line {line}: rejected: {reason}", err=True)
    for line, reason in report.warnings[:50]:
        click.echo(f"line {line}: {reason}", err=True)
    hidden = max(0, len(report.rejected) - 50) + max(0, len(report.warnings) - 50)
    if hidden:
        click.echo(f"... and {hidden} more", err=True)
    click.echo(
        f"{kind}: {report.imported} imported, {report.skipped} already imported, {len(report.rejected)} rejected, "
        f"{len(report.warnings)} warnings ({shown(settings.db_path)})",
        err=True,
    )


@import_.command(name="customers")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@encoding_option
@business_option
@db_option
def import_customers_cmd(file: Path, encoding: str, business: str | None, db: Path | None) -> None:
    """Columns: external_id,name,phone,email,street,unit,city,state,postal_code,notes (only name required)."""
    _run_import("customers", file, db, business, encoding)


@import_.command(name="technicians")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@encoding_option
@business_option
@db_option
def import_technicians_cmd(file: Path, encoding: str, business: str | None, db: Path | None) -> None:
    """Columns: external_id,name,phone,skills (skills separated by ';'; only name required)."""
    _run_import("technicians", file, db, business, encoding)
