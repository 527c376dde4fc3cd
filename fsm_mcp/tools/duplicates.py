"""Cleaning a customer base: finding records that are one customer, and merging them."""

from typing import Annotated

import anyio.from_thread
from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

from fsm_mcp.access.callers import needs
from fsm_mcp.connectors.base import DuplicateReport, MergePlan
from fsm_mcp.models import Confidence
from fsm_mcp.store.idempotency import Attempt
from fsm_mcp.tools._kit import (
    DESTROY,
    READ,
    ConfirmationToken,
    IdempotencyKey,
    Preview,
    actor,
    agent_errors,
    app,
    confirmed,
    preview,
)

CustomerId = Annotated[str, Field(min_length=1, max_length=64)]


class MergeResult(MergePlan, Preview):
    pass


def _what(plan: MergePlan) -> str:
    if not plan.merged:
        return "Nothing to merge: every record in merge_ids already points to keep_id."
    names = ", ".join(f"{c.name} ({c.customer_id})" for c in plan.merged)
    return (f"Folds {names} into {plan.keep.name} ({plan.keep.customer_id}): {plan.jobs_moved} job(s), "
            f"{plan.invoices_moved} invoice(s) and {plan.locations_moved} address(es) move, "
            f"{plan.locations_combined} duplicate address(es) combine, {len(plan.phones_added)} phone(s) and "
            f"{len(plan.emails_added)} e-mail(s) are added; the merged records become pointers to the kept one.")


def _done(plan: MergePlan) -> MergeResult:
    step = (f"Merged. Use {plan.keep.customer_id} for this customer from now on." if plan.merged
            else "Nothing was merged.")
    return MergeResult(**plan.model_dump(), will_change=_what(plan), next_step=step)


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
        the_app = app(ctx)
        backend = the_app.backend
        arguments = {"keep_id": keep_id, "merge_ids": merge_ids}
        if confirmation_token is None:  # a preview writes nothing and does not spend the key
            plan = await backend.merge_customers(keep_id, merge_ids, apply=False)
            if not plan.merged:
                return _done(plan)
            return MergeResult(**plan.model_dump(exclude={"applied"}),
                               **await preview(ctx, "merge_customers", arguments, _what(plan)))

        async def write(_: Attempt) -> MergeResult:
            async def merge() -> MergePlan:
                return await backend.merge_customers(keep_id, merge_ids, apply=True)

            return _done(await confirmed(ctx, confirmation_token, "merge_customers", arguments, merge))

        return await the_app.writer.run(
            tenant=backend.business.tenant_id, actor=actor(ctx), tool="merge_customers", key=idempotency_key,
            arguments=arguments, result_type=MergeResult, result_id=lambda r: r.keep.customer_id, write=write,
        )
