"""`fsm-mcp accounting connect|check|sync|key`: an administrator's commands for a business's books."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs, urlencode, urlparse

import anyio
import click
import httpx2 as httpx

from fsm_mcp.accounting import feed, open_sink
from fsm_mcp.accounting.oauth import Sealer, store_answer, token_request
from fsm_mcp.accounting.settings import AccountingSettings, load_for
from fsm_mcp.accounting.sink import Sink
from fsm_mcp.cli import _settings, business_option, db_option
from fsm_mcp.connectors.vendor_settings import SettingsError
from fsm_mcp.errors import FsmError
from fsm_mcp.store import Store, open_store
from fsm_mcp.store import accounting as sql

T = TypeVar("T")
SCOPES = {"quickbooks": "com.intuit.quickbooks.accounting",
          "xero": "openid profile email offline_access accounting.transactions accounting.contacts accounting.settings"}
VENDORS = {"quickbooks": "QuickBooks", "xero": "Xero"}


def _run(db: Path | None, business: str | None,
         work: Callable[[Store, str, AccountingSettings, str], Awaitable[T]]) -> T:
    settings = _settings(db, business)
    tenant = settings.business.tenant_id
    try:
        books = load_for(tenant)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    if books is None:
        raise click.ClickException(f"business {tenant!r} keeps no books: set provider (quickbooks or xero) in its "
                                   "[accounting] table, or FSM_MCP_ACCOUNTING_PROVIDER")
    database = open_store(settings.db_path)
    try:
        return anyio.run(work, database, tenant, books, settings.business.country)
    except FsmError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        database.close()


def _accounting() -> None:
    """The business's books (QuickBooks Online or Xero): invoices out exactly once, payments back."""


accounting: click.Group = click.group(name="accounting")(_accounting)


@accounting.command(name="key")
def key() -> None:
    """Print a new key for FSM_MCP_ACCOUNTING_TOKEN_KEY (or a token_key_file), which encrypts stored tokens."""
    click.echo(Sealer.new_key())


@accounting.command(name="connect")
@click.option("--redirect-url", help="The address the browser landed on after consent (it carries the code).")
@click.option("--refresh-token-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Take over an existing grant: a file holding its refresh token (rotated at once, then unusable).")
@business_option
@db_option
def connect(redirect_url: str | None, refresh_token_file: Path | None, business: str | None, db: Path | None) -> None:
    """Connect the books: consent in a browser (the address is printed), then paste where it landed."""

    async def work(store: Store, tenant: str, books: AccountingSettings, _: str) -> str:
        vendor = VENDORS[books.provider]
        async with httpx.AsyncClient(timeout=15.0) as http:
            if refresh_token_file is not None:
                form = {"grant_type": "refresh_token", "refresh_token": refresh_token_file.read_text().strip()}
            else:
                landed = redirect_url
                if landed is None:
                    state = secrets.token_urlsafe(16)
                    query = urlencode({"client_id": books.client_id, "response_type": "code", "state": state,
                                       "scope": SCOPES[books.provider], "redirect_uri": books.redirect_uri})
                    click.echo(f"Open this address, consent, and paste the address the browser lands on:\n"
                               f"{books.authorize_url}?{query}", err=True)
                    landed = click.prompt("address", err=True)
                given = parse_qs(urlparse(landed).query)
                if "code" not in given:
                    raise click.ClickException("that address carries no code; paste the whole address after consent")
                realm = (given.get("realmId") or [books.company])[0]
                if realm != books.company:
                    raise click.ClickException(f"consent was given for company {realm}, but the settings name "
                                               f"{books.company}; fix company in the [accounting] table")
                form = {"grant_type": "authorization_code", "code": given["code"][0], "redirect_uri": books.redirect_uri}
            answer = await token_request(vendor, http, books.token_url, books.client_id, books.client_secret, form)
        await store_answer(store, tenant, books.provider, books.company, Sealer(books.token_key), answer)
        return f"{vendor} connected for {tenant} (company {books.company}); tokens stored encrypted"

    click.echo(_run(db, business, work), err=True)


async def _sink(store: Store, tenant: str, books: AccountingSettings, region: str) -> Sink:
    return open_sink(store, tenant, books, region=region)


@accounting.command(name="check")
@business_option
@db_option
def check(business: str | None, db: Path | None) -> None:
    """Check the settings, the stored grant and one read from the books; say what is linked."""

    async def work(store: Store, tenant: str, books: AccountingSettings, region: str) -> str:
        sink = await _sink(store, tenant, books, region)
        try:
            await sink.books.probe()
        finally:
            await sink.aclose()
        linked = {kind: await store.aread(sql.count_links, tenant, books.provider, kind)
                  for kind in ("customer", "invoice")}
        return (f"{VENDORS[books.provider]} answers for {tenant} (company {books.company}); "
                f"{linked['customer']} customers and {linked['invoice']} invoices linked")

    click.echo(_run(db, business, work))


@accounting.command(name="sync")
@click.option("--invoice", "invoice_id", help="Post this one invoice (by our id) instead of the outbox's new ones.")
@business_option
@db_option
def sync(invoice_id: str | None, business: str | None, db: Path | None) -> None:
    """Post the invoices created since the last sync, then read back payments made in the books."""

    async def work(store: Store, tenant: str, books: AccountingSettings, region: str) -> str:
        sink = await _sink(store, tenant, books, region)
        feed.announce(sink)
        try:
            if invoice_id:
                posted = await sink.post_invoice(invoice_id)
                said = f"invoice {invoice_id} is {posted.their_id} in {VENDORS[books.provider]}" + \
                    (" (it was already)" if posted.already else "")
            else:
                said = f"{await feed.drain(sink)} invoices posted"
            applied = await sink.catch_up()
        finally:
            await sink.aclose()
        return f"{said}; {applied} invoices brought up to date with the books"

    click.echo(_run(db, business, work))
