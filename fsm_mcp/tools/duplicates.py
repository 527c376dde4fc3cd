"""Cleaning a customer base: finding records that are one customer, and merging them."""

from typing import Annotated

import anyio.from_thread
from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

from fsm_mcp.access.callers import needs
from fsm_mcp.models import Confidence
from fsm_mcp.results import DuplicateReport, MergePlan
from fsm_mcp.services import merge as merging
from fsm_mcp.services import reads
from fsm_mcp.services.merge import Merge, MergeRequest
from fsm_mcp.tools._kit import (
    DESTROY,
    READ,
    ConfirmationToken,
    IdempotencyKey,
    Preview,
    actor,
    agent_errors,
    business,
    previewed,
)

CustomerId = Annotated[str, Field(min_length=1, max_length=64)]


class MergeResult(MergePlan, Preview):
    pass


def _answer(merge: Merge) -> MergeResult:
    plan = merge.plan
    if merge.pending is not None:
        return MergeResult(**plan.model_dump(exclude={"applied"}), **previewed(merge.pending, merge.will_change))
    step = f"Merged. Use {plan.keep.customer_id} for this customer from now on." if plan.merged else \
        "Nothing was merged."
    return MergeResult(**plan.model_dump(), will_change=merge.will_change, next_step=step)


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

        return await reads.duplicates(business(ctx), min_confidence, limit, progress)

    @mcp.tool(annotations=DESTROY, meta=needs("customers:merge"))
    @agent_errors
    async def merge_customers(
        ctx: Context,
        keep_id: Annotated[CustomerId, Field(description="The record that remains")],
        merge_ids: Annotated[list[CustomerId], Field(min_length=1, max_length=20,
                                                      description="Records folded into keep_id")],
        idempotency_key: IdempotencyKey,
        confirmation_token: ConfirmationToken = None,
    ) -> MergeResult:
        """Merge duplicate customer records into one, in two calls: service addresses, jobs, invoices, phones,
        e-mails, notes and tags move onto keep_id, and the merged records become pointers to it (their ids keep
        working). The first call (without confirmation_token) changes nothing and returns what would move and a
        confirmation_token: show it to a person and, if they agree, call again with the same keep_id, merge_ids and
        idempotency_key and that token, within 5 minutes. Find candidates with find_duplicate_customers."""
        request = MergeRequest(keep_id=keep_id, merge_ids=tuple(merge_ids))
        return _answer(await merging.merge(business(ctx), actor(ctx), idempotency_key, request, confirmation_token))
