"""`fsm-mcp webhooks add|list|remove|redeliver|dead`: the business's webhook subscribers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import click

from fsm_mcp.cli import _settings, business_option, db_option
from fsm_mcp.errors import FsmError
from fsm_mcp.events import webhooks as hooks
from fsm_mcp.store import Store, open_store

T = TypeVar("T")


def _run(db: Path | None, business: str | None, work: Callable[[Store, str], Awaitable[T]]) -> T:
    settings = _settings(db, business)
    database = open_store(settings.db_path)
    try:
        return anyio.run(work, database, settings.business.tenant_id)
    except FsmError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        database.close()


def _webhooks() -> None:
    """Webhooks out: the business's changes POSTed to subscribers, signed as Standard Webhooks specifies."""


webhooks: click.Group = click.group(name="webhooks")(_webhooks)  # typed: cli.py imports it in a cycle


@webhooks.command(name="add")
@click.argument("url")
@click.option("--type", "types", multiple=True, metavar="TYPE",
              help="An event type to send (job.completed), a family (job.*), or * (the default: all); repeat for several.")
@click.option("--allow-loopback-http", is_flag=True, help="Allow http:// to 127.0.0.1 or localhost (development only).")
@business_option
@db_option
def add(url: str, types: tuple[str, ...], allow_loopback_http: bool, business: str | None, db: Path | None) -> None:
    """Add a subscriber, hearing of changes from now on; its signing secret is printed once on stdout."""
    sub, secret = _run(db, business, lambda d, t: hooks.add(d, t, url, list(types), allow_loopback_http))
    click.echo(f"subscriber {sub.id} for {sub.url} ({' '.join(sub.types)}); the secret is shown only this once",
               err=True)
    click.echo(f"{sub.id} {secret}")


@webhooks.command(name="list")
@click.option("--all", "include_disabled", is_flag=True, help="Include removed subscribers.")
@business_option
@db_option
def listing(include_disabled: bool, business: str | None, db: Path | None) -> None:
    """Every subscriber: id, URL, event types, created, and whether removed (never the secret)."""
    for s in _run(db, business, lambda d, t: hooks.listing(d, t, include_disabled)):
        click.echo(f"{s.id}\t{s.url}\t{' '.join(s.types)}\tcreated {s.created_at.isoformat()}\t"
                   f"{'removed' if s.disabled else 'active'}")


@webhooks.command(name="remove")
@click.argument("subscriber_id")
@business_option
@db_option
def remove(subscriber_id: str, business: str | None, db: Path | None) -> None:
    """Stop delivering to a subscriber (what still waited for it becomes dead letters)."""
    _run(db, business, lambda d, t: hooks.remove(d, t, subscriber_id))
    click.echo(f"removed {subscriber_id}", err=True)


@webhooks.command(name="dead")
@click.option("--subscriber", "subscriber_id", help="Only this subscriber's.")
@business_option
@db_option
def dead(subscriber_id: str | None, business: str | None, db: Path | None) -> None:
    """The dead-letter list: deliveries given up on, with their last error."""
    rows: list[Any] = _run(db, business, lambda d, t: hooks.dead_letters(d, t, subscriber_id))
    for r in rows:
        click.echo(f"{r['subscriber_id']}\t{r['event_id']}\t{r['type']}\t{r['attempts']} attempt(s)\t{r['last_error']}")


@webhooks.command(name="redeliver")
@click.argument("subscriber_id")
@click.argument("event_ids", nargs=-1)
@business_option
@db_option
def redeliver(subscriber_id: str, event_ids: tuple[str, ...], business: str | None, db: Path | None) -> None:
    """Queue a subscriber's dead deliveries again: the named events, or all of them."""
    n = _run(db, business, lambda d, t: hooks.redeliver(d, t, subscriber_id, list(event_ids) or None))
    click.echo(f"{n} delivery(ies) queued again for {subscriber_id}", err=True)
