"""`fsm-mcp keys create|list|revoke`: the HTTP server's API keys."""

from __future__ import annotations

from pathlib import Path

import click

from fsm_mcp.cli.options import business_option, db_option, load_settings, shared_store_path


@click.group()
def keys() -> None:
    """API keys for the HTTP server: each has a name, a business and scopes, and is stored hashed."""


@keys.command(name="create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True,
              help="What the key may do; repeat for several: customers:read, pii:read, jobs:write, dispatch:write, "
              "billing:write, customers:merge.")
@business_option
@db_option
def keys_create(name: str, scopes: tuple[str, ...], business: str | None, db: Path | None) -> None:
    """Make a key and print it once on stdout (it is stored only hashed; nothing else is printed there)."""
    from fsm_mcp.access import keys as api_keys
    from fsm_mcp.store import open_store

    settings = load_settings(db, business)
    database = open_store(settings.db_path)
    try:
        key = api_keys.create(database, name, settings.business.tenant_id, list(scopes))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        database.close()
    click.echo(f"key {name!r} for business {settings.business.tenant_id!r} with {', '.join(sorted(scopes))}; "
               "it is shown only this once", err=True)
    click.echo(key)


@keys.command(name="list")
@db_option
def keys_list(db: Path | None) -> None:
    """Every key's name, business, scopes and dates (never the key)."""
    from fsm_mcp.access import keys as api_keys
    from fsm_mcp.store import open_store

    database = open_store(shared_store_path(db))
    try:
        for k in api_keys.listing(database):
            state = f"revoked {k.revoked_at}" if k.revoked_at else "active"
            click.echo(f"{k.name}\t{k.business}\t{' '.join(k.scopes)}\tcreated {k.created_at}\t{state}")
    finally:
        database.close()


@keys.command(name="revoke")
@click.argument("name")
@db_option
def keys_revoke(name: str, db: Path | None) -> None:
    """Stop a key at once, in every running server that shares this store."""
    from fsm_mcp.access import keys as api_keys
    from fsm_mcp.store import open_store

    database = open_store(shared_store_path(db))
    try:
        if not api_keys.revoke(database, name):
            raise click.ClickException(f"no active key named {name!r}; `fsm-mcp keys list` shows them")
    finally:
        database.close()
    click.echo(f"revoked {name!r}", err=True)
