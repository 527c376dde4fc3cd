"""`fsm-mcp duplicates`, `reindex` and `identity train`: the customer directory's matching."""

from __future__ import annotations

import json
from pathlib import Path

import click

from fsm_mcp.cli.options import LazyBar, business_option, db_option, load_settings


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print {\"groups\": [...]} as JSON on stdout.")
@click.option("--min-confidence", type=click.Choice(["exact", "likely", "possible"]), default="likely", show_default=True)
@click.option("--limit", type=click.IntRange(1), default=1000, show_default=True, help="How many groups at most.")
@business_option
@db_option
def duplicates(as_json: bool, min_confidence: str, limit: int, business: str | None, db: Path | None) -> None:
    """List groups of customer records that are the same customer, surest first."""
    from fsm_mcp.directory.duplicates import find
    from fsm_mcp.store import open_store

    settings = load_settings(db, business)
    database = open_store(settings.db_path)
    with LazyBar("comparing candidate pairs") as bar:
        try:
            report = database.read(find, settings.business.tenant_id, min_confidence, limit, bar.update)
        finally:
            database.close()
    if as_json:
        groups = [
            {"customer_ids": [m.customer_id for m in g.members], "external_ids": [m.external_id for m in g.members],
             "names": [m.name for m in g.members], "confidence": g.confidence, "score": g.score, "reasons": g.reasons}
            for g in report.groups
        ]
        click.echo(json.dumps({"groups": groups}, indent=2))
    else:
        for g in report.groups:
            click.echo(f"{g.confidence} ({g.score}): " + " | ".join(f"{m.name} [{m.customer_id}"
                       + (f", {m.external_id}" if m.external_id else "") + "]" for m in g.members))
            for reason in g.reasons:
                click.echo(f"    {reason}")
    more = f", {report.more_groups} more beyond --limit" if report.more_groups else ""
    click.echo(f"{len(report.groups)} group(s) among {report.customers} customers{more} "
               f"({report.pairs_compared} candidate pairs compared)", err=True)


@click.command()
@business_option
@db_option
def reindex(business: str | None, db: Path | None) -> None:
    """Rebuild the customer matching index from the stored records (after an upgrade changes its rules)."""
    from fsm_mcp.importer import reindex_customers
    from fsm_mcp.store import open_store, shown

    settings = load_settings(db, business)
    database = open_store(settings.db_path)
    with LazyBar("indexing customers") as bar:
        try:
            count = reindex_customers(database, settings.business.tenant_id, bar.update)
        finally:
            database.close()
    click.echo(f"indexed {count} customers ({shown(settings.db_path)})", err=True)


@click.group()
def identity() -> None:
    """The customer-matching model."""


@identity.command()
@business_option
@db_option
def train(business: str | None, db: Path | None) -> None:
    """Re-estimate how often unrelated customers agree by chance, from this base (imports do it too)."""
    from fsm_mcp.directory import identity_model
    from fsm_mcp.store import open_store

    settings = load_settings(db, business)
    database = open_store(settings.db_path)
    try:
        model = database.write(identity_model.train, settings.business.tenant_id, database.clock.now())
    finally:
        database.close()
    click.echo(json.dumps(model.to_json(), indent=2, sort_keys=True))
