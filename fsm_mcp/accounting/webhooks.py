"""Webhooks from the books, authenticated by their signature only (never by an API key): the base64
HMAC-SHA256 of the raw body, keyed with QuickBooks' verifier token (`intuit-signature`) or Xero's webhook
key (`x-xero-signature`). A delivery whose signature does not verify is refused with 401 before its body
is read as JSON; Xero's intent-to-receive check is exactly that (a right signature 200, a wrong one 401).

`routes(find)` mounts `/webhooks/quickbooks/{business}` and `/webhooks/xero/{business}` on the HTTP app;
`find(business, provider)` gives that business's `Sink` (None: 404).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fsm_mcp.accounting.sink import Announced, Sink
from fsm_mcp.errors import FsmError

log = logging.getLogger("fsm_mcp")
HEADERS = {"quickbooks": "intuit-signature", "xero": "x-xero-signature"}
MOST = 1_000_000  # bytes a delivery may have


def signed(body: bytes, signature: str | None, key: str) -> bool:
    """The signature header is the base64 HMAC-SHA256 of exactly these bytes under `key`."""
    if not signature or not key:
        return False
    expected = base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected.encode(), signature.strip().encode())


def quickbooks_signed(body: bytes, signature: str | None, verifier_token: str) -> bool:
    return signed(body, signature, verifier_token)


def xero_signed(body: bytes, signature: str | None, webhook_key: str) -> bool:
    return signed(body, signature, webhook_key)


Find = Callable[[str, str], Sink | None]


def parse(provider: str, body: bytes) -> list[Announced]:
    if provider == "quickbooks":
        from fsm_mcp.accounting.quickbooks.books import parse as parse_quickbooks

        return parse_quickbooks(body)
    from fsm_mcp.accounting.xero.books import parse as parse_xero

    return parse_xero(body)


def routes(find: Find) -> list[Route]:
    """The two webhook endpoints."""

    def endpoint(provider: str) -> Callable[[Request], Any]:
        async def receive(request: Request) -> Response:
            sink = find(request.path_params["business"], provider)
            if sink is None:
                return Response(status_code=404)
            body = await request.body()
            key = sink.webhook_key.get_secret_value() if sink.webhook_key else ""
            if len(body) > MOST or not signed(body, request.headers.get(HEADERS[provider]), key):
                return Response(status_code=401)
            try:
                news = parse(provider, body)
            except (ValueError, KeyError, TypeError, AttributeError):
                return Response(status_code=400)
            try:
                await sink.announced(news)
            except FsmError as exc:  # the vendor retries a delivery not answered 2xx; catch-up covers the rest
                log.warning("accounting webhook for %s could not be applied yet: %s", provider, type(exc).__name__)
                return Response(status_code=503)
            return Response(status_code=200)

        return receive

    return [Route(f"/webhooks/{provider}/{{business}}", endpoint(provider), methods=["POST"]) for provider in HEADERS]
