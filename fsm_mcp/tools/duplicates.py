"""Cleaning a customer base: finding records that are one customer, and merging them."""

from typing import Annotated

import anyio.from_thread
from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

from fsm_mcp.access.callers import needs
from fsm_mcp.connectors.base import DuplicateReport, MergePlan
from fsm_mcp.models import Confidence
from fsm_mcp.store.idempotency import Attempt
from fsm_mcp.tools._kit import CHANGE, READ, IdempotencyKey, actor, agent_errors, app

CustomerId = Annotated[str, Field(min_length=1, max_length=64)]


class MergeResult(MergePlan):
    next_step: str


def _answer(plan: MergePlan) -> MergeResult:
    if not plan.merged:
        step = "Nothing to merge: every record in merge_ids already points to keep_id."
    elif plan.applied:
        step = f"Merged. Use {plan.keep.customer_id} for this customer from now on."
    else:
        step = ("Nothing changed. Show this preview to a person; if they agree, call merge_customers again with "
                "confirm=true and the same idempotency_key.")
    return MergeResult(**plan.model_dump(), next_step=step)


def register(mcp: MCPServer) -> None:
    @mcp.tool(annotations=READ, meta=needs("customers:read"))
    @agent_errors
    async def find_duplicate_customers(
        ctx: Context,
        min_confidence: Annotated[Confidence, Field(
            description="`exact`: only records that are surely one customer; `likely` (default) adds near-certain ones; "
            "`possible` adds pairs a person must judge, such as relatives sharing a phone")] = "likely",
        limit: Annotated[int, Field(ge=1, le=500, description="How many groups at most, surest first")] = 50,
    ) -> DuplicateReport:
        """List groups of customer records that are the same customer (e.g. "Bill Jenkins, 123 Oak St" beside
        "William Jenkins, 123 Oak Street"), each with its confidence and the reasons. Use it when asked to clean up
        the customer list, or when a caller seems to have two records. Reports progress on a large base. Next:
        show the group to a person, then merge_customers with the record to keep (the first member is the oldest)."""

        def progress(done: int, total: int) -> None:  # called from the worker thread doing the comparison
            anyio.from_thread.run(ctx.report_progress, done, total, "comparing candidate pairs")

        return await app(ctx).backend.find_duplicates(min_confidence, limit, progress)

    @mcp.tool(annotations=CHANGE, meta=needs("customers:merge"))
    @agent_errors
    async def merge_customers(
        ctx: Context,
        keep_id: Annotated[CustomerId, Field(description="The record that remains")],
        merge_ids: Annotated[list[CustomerId], Field(min_length=1, max_length=20,
                                                      description="Records folded into keep_id")],
        idempotency_key: IdempotencyKey,
        confirm: Annotated[bool, Field(
            description="false (default): only preview what would move. true: merge. Confirm with a person first")] = False,
    ) -> MergeResult:
        """Merge duplicate customer records into one: service addresses, jobs, invoices, phones, e-mails, notes and
        tags move onto keep_id, and the merged records become pointers to it (their ids keep working). Without
        confirm=true nothing changes and you get a preview of what would move: show it to a person and call again
        with confirm=true and the same idempotency_key. Find candidates with find_duplicate_customers."""
        the_app = app(ctx)
        backend = the_app.backend
        if not confirm:  # a preview writes nothing and does not spend the key
            return _answer(await backend.merge_customers(keep_id, merge_ids, apply=False))

        async def write(_: Attempt) -> MergeResult:
            return _answer(await backend.merge_customers(keep_id, merge_ids, apply=True))

        return await the_app.writer.run(
            tenant=backend.business.tenant_id, actor=actor(ctx), tool="merge_customers", key=idempotency_key,
            arguments={"keep_id": keep_id, "merge_ids": merge_ids}, result_type=MergeResult,
            result_id=lambda r: r.keep.customer_id, write=write,
        )
