"""Webhook subscribers: registration (the URL checked), their secrets, and signing as Standard Webhooks
specifies (`standardwebhooks`, the specification's own reference library).

Each delivery carries `webhook-id` (the event's id, the same on every attempt: a receiver drops repeats by
it), `webhook-timestamp` (seconds, of the attempt) and `webhook-signature`: `v1,` and the base64 HMAC-SHA256,
under the subscriber's secret, of `id.timestamp.body`. The secret (`whsec_` and base64 of 24 random bytes) is
shown once, when the subscriber is added; it is kept in the store, which signing needs in the clear.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from fsm_mcp.access.hosts import is_loopback
from fsm_mcp.errors import InvalidInput, NotFound
from fsm_mcp.store import Store
from fsm_mcp.store import events as sql
from fsm_mcp.store.db import from_db


@dataclass(frozen=True, slots=True)
class Subscriber:
    tenant: str
    id: str
    url: str
    secret: str
    types: tuple[str, ...]  # event types, `job.*` for a family, `*` for all
    created_at: datetime
    disabled: bool

    def wants(self, event_type: str) -> bool:
        return any(t == "*" or t == event_type or (t.endswith(".*") and event_type.startswith(t[:-1]))
                   for t in self.types)


def _subscriber(row: Any) -> Subscriber:
    return Subscriber(tenant=row["tenant_id"], id=row["id"], url=row["url"], secret=row["secret"],
                      types=tuple(json.loads(row["types"])), created_at=from_db(row["created_at"]),
                      disabled=row["disabled_at"] is not None)


def check_url(url: str, allow_loopback_http: bool = False) -> str:
    """An https URL; http only to this machine's loopback, and only with `allow_loopback_http` (development)."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise InvalidInput("url", "must not carry a user name or password; the signature authenticates deliveries")
    if not parts.hostname:
        raise InvalidInput("url", "must be an absolute URL such as https://example.com/hooks")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and is_loopback(parts.hostname):
        if allow_loopback_http:
            return url
        raise InvalidInput("url", "http is allowed only to loopback for development: pass --allow-loopback-http, "
                           "or use https")
    raise InvalidInput("url", "must be https (http only to 127.0.0.1/localhost with --allow-loopback-http)")


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def signed_headers(secret: str, event_id: str, at: datetime, body: bytes) -> dict[str, str]:
    return {"webhook-id": event_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(event_id, at, body), "content-type": "application/json"}


def check_types(types: list[str]) -> tuple[str, ...]:
    from typing import get_args

    from fsm_mcp.events.outbox import EventType

    known = set(get_args(EventType))
    for t in types:
        if t != "*" and t not in known and not (t.endswith(".*") and any(k.startswith(t[:-1]) for k in known)):
            raise InvalidInput("type", f"{t!r} is not an event type; the types are {', '.join(sorted(known))}, "
                               "or a family such as job.*, or *")
    return tuple(types) or ("*",)


async def add(db: Store, tenant: str, url: str, types: list[str], allow_loopback_http: bool = False
              ) -> tuple[Subscriber, str]:
    """A new subscriber, hearing of the business's changes from now on; returns it and its secret."""
    url = check_url(url, allow_loopback_http)
    chosen = check_types(types)
    secret = new_secret()
    subscriber_id = await db.awrite(sql.add_subscriber, tenant, db.clock.now(), url, secret, json.dumps(chosen))
    return next(s for s in await listing(db, tenant) if s.id == subscriber_id), secret


async def listing(db: Store, tenant: str | None, include_disabled: bool = False) -> list[Subscriber]:
    return [_subscriber(r) for r in await db.aread(sql.subscribers, tenant, include_disabled)]


async def remove(db: Store, tenant: str, subscriber_id: str) -> None:
    """Disable the subscriber; what was still waiting for it is marked dead."""
    if not await db.awrite(sql.disable_subscriber, tenant, subscriber_id, db.clock.now()):
        raise NotFound("webhook subscriber", subscriber_id, "id", "fsm-mcp webhooks list shows them.")


async def redeliver(db: Store, tenant: str, subscriber_id: str, event_ids: list[str] | None = None) -> int:
    """Send dead deliveries again (the named events, or all the subscriber's dead ones); how many were queued."""
    return await db.awrite(sql.redeliver, tenant, subscriber_id, event_ids, db.clock.now())


async def dead_letters(db: Store, tenant: str, subscriber_id: str | None = None, limit: int = 100) -> list[Any]:
    return await db.aread(sql.deliveries, tenant, "dead", subscriber_id, limit)
