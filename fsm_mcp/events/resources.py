"""A job and a business's change feed as MCP resources, and `ResourceUpdated` for them on `subscriptions/listen`.

`fsm://jobs/{job_id}` is a job as get_job answers it; `fsm://businesses/{business_id}/changes` the business's newest changes (as
list_changes answers, with the cursor to read on from). Reading either needs `customers:read`, and a caller
reads its own business only (another business's job id is unknown to it).

Every replica tails the store's feed (`watch`) and publishes to its own SDK `SubscriptionBus` a
`ResourceUpdated` for each changed job and for the feed, whichever replica or door made the change: the
store is what the replicas share, so no Redis bus is needed for it. An update is a hint to read again; the
URI names a job id, never what changed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.server.subscriptions import ResourceUpdated, SubscriptionBus

from fsm_mcp.access import callers
from fsm_mcp.access.pii import masked
from fsm_mcp.errors import FsmError
from fsm_mcp.events.outbox import Page, event_of
from fsm_mcp.services import reads
from fsm_mcp.store import Store
from fsm_mcp.store import events as sql
from fsm_mcp.tools._kit import business


def feed_uri(tenant: str) -> str:
    return f"fsm://businesses/{tenant}/changes"
FEED_SIZE = 100


def job_uri(job_id: str) -> str:
    return f"fsm://jobs/{job_id}"


def _may_read() -> None:
    caller = callers.current()
    if not caller.may("customers:read"):
        raise ResourceError(f"reading jobs and changes needs the customers:read scope, which {caller.identity} "
                            "does not have")


def register(mcp: MCPServer) -> None:
    @mcp.resource("fsm://jobs/{job_id}", name="job", mime_type="application/json",
                  description="A job as get_job answers it; watch it with subscriptions/listen to hear when it changes")
    async def job(job_id: str, ctx: Context) -> str:
        _may_read()
        try:
            found = await reads.job(business(ctx), job_id)
        except FsmError as exc:
            raise ResourceError(str(exc)) from exc
        return (found if callers.current().may("pii:read") else masked(found)).model_dump_json()

    @mcp.resource("fsm://businesses/{business_id}/changes", name="changes", mime_type="application/json",
                  description="The business's newest changes, oldest first, and the cursor for list_changes")
    async def changes(business_id: str, ctx: Context) -> str:
        _may_read()
        served = business(ctx)
        if business_id != served.tenant:
            raise ResourceError(f"business_id: this caller reads its own business's changes only: {feed_uri(served.tenant)}")
        rows = await served.db.aread(sql.newest, served.tenant, FEED_SIZE)
        events = [event_of(r) for r in rows]
        return Page(events=events, cursor=events[-1].id if events else None, more=False).model_dump_json()


async def watch(db: Store, tenants: Iterable[str], bus: SubscriptionBus, poll: float = 0.25) -> None:
    """Publish `ResourceUpdated` for every job (and the feed) changed in the store, from now on; forever."""
    every = list(tenants)
    marks = {t: await db.aread(sql.counter, t) for t in every}
    while True:
        await anyio.sleep(poll)
        for tenant in every:
            rows: list[Any] = await db.aread(sql.after, tenant, marks[tenant], 500)
            if not rows:
                continue
            marks[tenant] = int(rows[-1]["seq"])
            for uri in dict.fromkeys(job_uri(r["subject_id"]) for r in rows if r["subject_type"] == "job"):
                await bus.publish(ResourceUpdated(uri=uri))
            await bus.publish(ResourceUpdated(uri=feed_uri(tenant)))


@asynccontextmanager
async def watching(db: Store, tenants: Iterable[str], bus: SubscriptionBus) -> AsyncIterator[None]:
    """`watch` in the background for the block."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch, db, list(tenants), bus)
        yield
        tg.cancel_scope.cancel()
