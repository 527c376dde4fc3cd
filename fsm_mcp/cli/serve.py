"""`fsm-mcp serve`: the MCP server over stdio or streamable HTTP."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from fsm_mcp.access.config import AccessSettings
from fsm_mcp.access.hosts import is_loopback
from fsm_mcp.cli.options import db_option, load_businesses, load_settings
from fsm_mcp.settings import Settings


@click.command()
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
        settings = load_settings(db, business)
        build_server(settings, read_only=read_only, deliver_webhooks=True, automate=not read_only).run("stdio")
        return
    every = load_businesses(db, business)
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
