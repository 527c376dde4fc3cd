"""The `fsm-mcp` command: serve, keys, demo, import, duplicates, reindex, identity train, sync, check, tools-doc.
Logs and progress go to stderr."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import anyio
import click

from fsm_mcp.access.config import AccessSettings
from fsm_mcp.access.hosts import is_loopback
from fsm_mcp.settings import Settings

db_option = click.option(
    "--db", "db", envvar="FSM_MCP_DB",
    help="The store: a SQLite file (default: the per-user data directory), or a postgresql:// URL for several replicas.",
)


business_option = click.option(
    "--business", "business", envvar="FSM_MCP_TENANT", metavar="ID",
    help="The business to work on (default: the only one configured).",
)


def _settings(db: Path | None, business: str | None = None) -> Settings:
    try:
        settings = Settings.load(db=db, business=business)
    except (ValueError, OSError) as exc:
        raise click.UsageError(f"configuration: {exc}") from None
    logging.getLogger().setLevel(settings.log_level)  # FSM_MCP_LOG_LEVEL, or log_level in the file
    return settings


@click.group()
@click.version_option(package_name="fsm-mcp")
def main() -> None:
    """An MCP server for field-service businesses (HVAC, plumbing, electrical, pest control)."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # httpx logs every request's URL at INFO, and a vendor lookup's URL can carry a name or a number.
    logging.getLogger("httpx2").setLevel(logging.WARNING)


@main.command()
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--read-only", is_flag=True, help="Expose only the tools that read; no caller may write.")
@click.option("--no-auth", is_flag=True, help="HTTP without authentication, for development on this machine only.")
@click.option("--stateless", is_flag=True, default=None,
              help="HTTP without sessions (several processes behind one load balancer).")
@click.option("--business", "business", metavar="ID",
              help="Serve only this business (default: every configured one over HTTP; over stdio, the default one).")
@db_option
def serve(transport: str, host: str, port: int, read_only: bool, no_auth: bool, stateless: bool | None,
          business: str | None, db: Path | None) -> None:
    """Run the MCP server: stdio for desktop clients (trusted as the local user), or streamable HTTP at /mcp,
    where every request needs an API key (`fsm-mcp keys create`) or an OAuth token."""
    from fsm_mcp.access.callers import LOCAL, NOBODY, Caller
    from fsm_mcp.server import build_server

    if transport == "stdio":
        settings = _settings(db, business)
        build_server(settings, read_only=read_only, deliver_webhooks=True, automate=not read_only).run("stdio")
        return
    every = _businesses(db, business)
    access = next(iter(every.values())).access
    if stateless is not None:
        access = access.model_copy(update={"stateless": stateless})
    if not is_loopback(host):
        if no_auth:
            raise click.UsageError(f"--host {host} with --no-auth would take anonymous calls from the network; "
                                   "serve 127.0.0.1 without authentication, or drop --no-auth")
        if not access.allowed_hosts:
            raise click.UsageError(f"--host {host}: name the host names clients use in FSM_MCP_SERVE_ALLOWED_HOSTS (or "
                                   "allowed_hosts in the [serve] table); requests with any other Host header are refused")
    caller = Caller("anonymous", None, LOCAL.scopes) if no_auth else NOBODY
    server = build_server(every, caller=caller, read_only=read_only, deliver_webhooks=True, automate=not read_only)
    _serve_http(server, every, access, host, port, authenticate=not no_auth)


def _businesses(db: Path | None, business: str | None) -> dict[str, Settings]:
    from fsm_mcp.settings import load_businesses

    if business:
        return {business: _settings(db, business)}
    try:
        every = load_businesses(db=db)
    except (ValueError, OSError) as exc:
        raise click.UsageError(f"configuration: {exc}") from None
    logging.getLogger().setLevel(next(iter(every.values())).log_level)
    return every


def _serve_http(server: Any, every: dict[str, Settings], access: AccessSettings, host: str, port: int,
                authenticate: bool) -> None:
    import uvicorn

    from fsm_mcp.access import keys
    from fsm_mcp.access.http import http_app
    from fsm_mcp.access.slow_clients import with_header_timeout
    from fsm_mcp.access.tokens import Verifier
    from fsm_mcp.store import open_store

    first = next(iter(every.values()))
    database = open_store(first.db_path)  # the API keys: looked up on every request, so a revoked one fails at once
    try:
        verifier = Verifier(database, every.keys(), access) if authenticate else None
        if authenticate and not access.oauth and not any(k.revoked_at is None for k in keys.listing(database)):
            logging.getLogger("fsm_mcp").warning(
                "no API key exists yet, so every request will be refused: create one with "
                "`fsm-mcp keys create NAME --scope customers:read ...`")
        if crowded := access.crowding(len(every)):
            logging.getLogger("fsm_mcp").warning(crowded)
        app = http_app(server, access, verifier)
        uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, log_level=first.log_level.lower(),
                                      http=with_header_timeout(access.header_timeout))).run()
    finally:
        database.close()


@main.group()
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

    settings = _settings(db, business)
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

    database = open_store(_store_path(db))
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

    database = open_store(_store_path(db))
    try:
        if not api_keys.revoke(database, name):
            raise click.ClickException(f"no active key named {name!r}; `fsm-mcp keys list` shows them")
    finally:
        database.close()
    click.echo(f"revoked {name!r}", err=True)


def _store_path(db: Path | None) -> Path | str:
    """The store, for commands that span every business."""
    return next(iter(_businesses(db, None).values())).db_path


@main.command()
@click.option(  # not db_option: the demo never opens the configured store (FSM_MCP_DB is not read)
    "--db", "db", type=click.Path(dir_okay=False, path_type=Path),
    help="Create the demo's SQLite database in this new file and keep it (default: a fresh temporary database, "
    "removed when the demo ends).",
)
def demo(db: Path | None) -> None:
    """Create a demo business and play a scripted call through a real MCP client."""
    from fsm_mcp.demo import run_demo

    anyio.run(run_demo, db)


@main.group(name="import")
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

    settings = _settings(db, business)
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


class _LazyBar:
    """A progress bar on stderr for work whose size is known only once it starts."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None

    def update(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
        self.bar.update(done - self.bar.pos)

    def __enter__(self) -> _LazyBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.render_finish()


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print {\"groups\": [...]} as JSON on stdout.")
@click.option("--min-confidence", type=click.Choice(["exact", "likely", "possible"]), default="likely", show_default=True)
@click.option("--limit", type=click.IntRange(1), default=1000, show_default=True, help="How many groups at most.")
@business_option
@db_option
def duplicates(as_json: bool, min_confidence: str, limit: int, business: str | None, db: Path | None) -> None:
    """List groups of customer records that are the same customer, surest first."""
    from fsm_mcp.directory.duplicates import find
    from fsm_mcp.store import open_store

    settings = _settings(db, business)
    database = open_store(settings.db_path)
    with _LazyBar("comparing candidate pairs") as bar:
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


@main.command()
@business_option
@db_option
def reindex(business: str | None, db: Path | None) -> None:
    """Rebuild the customer matching index from the stored records (after an upgrade changes its rules)."""
    from fsm_mcp.importer import reindex_customers
    from fsm_mcp.store import open_store, shown

    settings = _settings(db, business)
    database = open_store(settings.db_path)
    with _LazyBar("indexing customers") as bar:
        try:
            count = reindex_customers(database, settings.business.tenant_id, bar.update)
        finally:
            database.close()
    click.echo(f"indexed {count} customers ({shown(settings.db_path)})", err=True)


def _vendor(db: Path | None, business: str | None) -> Settings:
    settings = _settings(db, business)
    if settings.backend == "local":
        raise click.UsageError("the local backend has nothing to check or sync; set FSM_MCP_BACKEND=servicetitan, fieldpulse "
                               "or housecallpro (or backend in the configuration file) and its settings")
    return settings


@main.command()
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


@main.command()
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


@main.group()
def identity() -> None:
    """The customer-matching model."""


@identity.command()
@business_option
@db_option
def train(business: str | None, db: Path | None) -> None:
    """Re-estimate how often unrelated customers agree by chance, from this base (imports do it too)."""
    from fsm_mcp.directory import identity_model
    from fsm_mcp.store import open_store

    settings = _settings(db, business)
    database = open_store(settings.db_path)
    try:
        model = database.write(identity_model.train, settings.business.tenant_id, database.clock.now())
    finally:
        database.close()
    click.echo(json.dumps(model.to_json(), indent=2, sort_keys=True))


@main.command(name="tools-doc")
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


from fsm_mcp.events import commands as _webhook_commands  # noqa: E402  (it builds on the options above)

main.add_command(_webhook_commands.webhooks)

from fsm_mcp.accounting import commands as _accounting_commands  # noqa: E402  (it builds on the options above)

main.add_command(_accounting_commands.accounting)
