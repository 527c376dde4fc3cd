"""Delivering the outbox to webhook subscribers: at least once, in order per subject, dead letters at the end.

One worker runs at a time among the replicas sharing the store (a store lease, as the directory sync). Each
pass it fans the new events out to every subscriber whose filter wants them (a delivery row per subscriber
and event, and the subscriber's mark moved past them, in one transaction), then gives each subscriber its own
task: a subscriber that hangs or fails holds up nobody else.

- **In order per subject.** A delivery is sent only when no earlier delivery of the same subject (a job, an
  invoice) to that subscriber is still pending; different subjects go out side by side (`Policy.parallel`).
- **At least once.** A delivery is done on a 2xx answer. Anything else (another status, a redirect, which is
  never followed, a timeout, a refused connection) is tried again after an exponential backoff with full
  jitter, capped (`Policy.max_backoff`); a receiver drops repeats by `webhook-id`.
- **Dead letters.** After `Policy.max_attempts` attempts or `Policy.max_age` since it was queued, a delivery
  is dead: the next event of its subject goes on, and `fsm-mcp webhooks redeliver` queues it again.
- **Pruning.** The same loop forgets events past each business's `event_retention_days`, hourly.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anyio
import httpx2 as httpx

from fsm_mcp.errors import FsmError
from fsm_mcp.events import outbox, webhooks
from fsm_mcp.events.webhooks import Subscriber
from fsm_mcp.store import Store
from fsm_mcp.store import events as sql
from fsm_mcp.store.db import from_db
from fsm_mcp.store.leases import Lease

log = logging.getLogger("fsm_mcp")


@dataclass(frozen=True, slots=True)
class Policy:
    poll: float = 0.5  # seconds between passes
    timeout: float = 10.0  # seconds a subscriber has to answer one delivery
    first_retry: float = 1.0  # seconds before the second attempt; doubling after
    max_backoff: timedelta = timedelta(minutes=10)
    max_attempts: int = 30  # about 4 hours of retries at the default cap
    max_age: timedelta = timedelta(hours=24)
    batch: int = 100  # deliveries read per subscriber per round
    parallel: int = 8  # subjects in flight at once per subscriber
    prune_every: timedelta = timedelta(hours=1)
    lease: timedelta = timedelta(seconds=30)


def body(tenant: str, event: Any) -> bytes:
    """What a subscriber receives (Standard Webhooks' `type`, `timestamp`, `data`); the same on every attempt."""
    return json.dumps({"id": event["event_id"], "type": event["type"], "business": tenant,
                       "timestamp": from_db(event["at"]).isoformat(),
                       "subject": {"type": event["subject_type"], "id": event["subject_id"]},
                       "data": json.loads(event["data"])}, sort_keys=True).encode()


class Deliverer:
    def __init__(self, db: Store, retention: Mapping[str, timedelta], client: httpx.AsyncClient,
                 policy: Policy | None = None, rng: random.Random | None = None) -> None:
        self.db, self.retention, self.client = db, dict(retention), client
        self.policy = policy or Policy()
        self.rng = rng or random.Random()
        self._busy: set[str] = set()
        self._pruned: datetime | None = None
        self._fanned: dict[str, int] = {}  # subscriber -> its business's counter when last fanned out

    async def fan_out(self) -> list[Subscriber]:
        """Queue the events each subscriber has not yet been given; the subscribers."""
        every = [s for s in await webhooks.listing(self.db, None) if s.tenant in self.retention]
        counters = {t: await self.db.aread(sql.counter, t) for t in {s.tenant for s in every}}
        for sub in every:
            if self._fanned.get(sub.id) == counters[sub.tenant]:
                continue  # nothing new in its business since the last pass: no write
            while True:
                def step(conn: Any, sub: Subscriber = sub) -> int:
                    mark = conn.execute("SELECT fanned_seq FROM webhook_subscribers WHERE id=?", (sub.id,)).fetchone()
                    rows = sql.after(conn, sub.tenant, int(mark[0]), 500)
                    sql.fan_out(conn, {"tenant_id": sub.tenant, "id": sub.id}, rows,
                                [sub.wants(r["type"]) for r in rows], self.db.clock.now())
                    return len(rows)

                if await self.db.awrite(step) < 500:
                    break
            self._fanned[sub.id] = counters[sub.tenant]
        return every

    def _backoff(self, attempts: int) -> timedelta:
        ceiling = min(self.policy.max_backoff.total_seconds(), self.policy.first_retry * 2 ** attempts)
        return timedelta(seconds=self.rng.uniform(ceiling / 2, ceiling))

    async def send(self, sub: Subscriber, row: Any) -> bool:
        """One attempt of one delivery, its outcome recorded; True if the subscriber took it."""
        now = self.db.clock.now()
        payload = body(sub.tenant, row)
        status: int | None = None
        try:
            with anyio.fail_after(self.policy.timeout):
                answer = await self.client.post(sub.url, content=payload,
                                                headers=webhooks.signed_headers(sub.secret, row["event_id"], now, payload))
            status = answer.status_code
            error = "" if 200 <= status < 300 else f"answered {status}" + (" (a redirect, not followed)"
                                                                              if 300 <= status < 400 else "")
        except TimeoutError:
            error = f"no answer within {self.policy.timeout:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}"
        if not error:
            await self.db.awrite(sql.delivered, sub.id, row["event_id"], self.db.clock.now(), status)
            return True
        attempts = int(row["attempts"]) + 1
        queued = from_db(row["created_at"])
        later = self.db.clock.now() + self._backoff(attempts - 1)
        dead = attempts >= self.policy.max_attempts or later - queued >= self.policy.max_age
        await self.db.awrite(sql.failed, sub.id, row["event_id"], status, error, None if dead else later)
        if dead:
            log.warning("webhook %s: event %s is a dead letter after %d attempt(s): %s", sub.id, row["event_id"],
                        attempts, error)
        return False

    async def drain(self, sub: Subscriber) -> None:
        """Send the subscriber's due deliveries, round after round, until none is due."""
        limiter = anyio.CapacityLimiter(self.policy.parallel)

        async def one(row: Any) -> None:
            async with limiter:
                await self.send(sub, row)

        try:
            while rows := await self.db.aread(sql.due, sub.id, self.db.clock.now(), self.policy.batch):
                async with anyio.create_task_group() as tg:
                    for row in rows:
                        tg.start_soon(one, row)
        finally:
            self._busy.discard(sub.id)

    async def prune(self) -> None:
        now = self.db.clock.now()
        if self._pruned is not None and now - self._pruned < self.policy.prune_every:
            return
        self._pruned = now
        for tenant, kept in self.retention.items():
            if removed := await outbox.prune(self.db, tenant, kept):
                log.info("outbox of %s: %d event(s) past %d days forgotten", tenant, removed, kept.days)

    async def run(self, lease: Lease | None = None) -> None:
        """Pass after pass while this process holds the lease; forever (cancel to stop)."""
        lease = lease or Lease(self.db, "webhooks:deliver", self.policy.lease)
        try:
            async with anyio.create_task_group() as tg:
                while True:
                    try:
                        if await lease.take():
                            await self.prune()
                            for sub in await self.fan_out():
                                if sub.id not in self._busy:
                                    self._busy.add(sub.id)
                                    tg.start_soon(self.drain, sub)
                    except FsmError as exc:  # the store is busy: the next pass tries again
                        log.warning("webhook delivery pass failed: %s", exc)
                    await anyio.sleep(self.policy.poll)
        finally:
            with anyio.CancelScope(shield=True), suppress(FsmError):
                await lease.release()


def http_client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The client deliveries go out on: redirects never followed (a 3xx is a failed attempt), no proxy from the
    environment."""
    return httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False)


@asynccontextmanager
async def delivering(db: Store, retention: Mapping[str, timedelta], transport: httpx.AsyncBaseTransport | None = None,
                     policy: Policy | None = None) -> AsyncIterator[Deliverer]:
    """The delivery worker running in the background for the block (for `fsm-mcp serve`)."""
    async with http_client(transport) as client:
        deliverer = Deliverer(db, retention, client, policy)
        async with anyio.create_task_group() as tg:
            tg.start_soon(deliverer.run)
            yield deliverer
            tg.cancel_scope.cancel()
