"""Merging duplicate customer records: previewed as a plan, carried out on a person's confirmation."""

from __future__ import annotations

from pydantic import BaseModel

from fsm_mcp.businesses import ServedBusiness
from fsm_mcp.events import changes
from fsm_mcp.models import readable
from fsm_mcp.results import MergePlan
from fsm_mcp.services.confirmation import Pending, confirmed, issue
from fsm_mcp.services.requests import Request
from fsm_mcp.store.idempotency import Attempt

OPERATION = "merge_customers"


class MergeRequest(Request):
    keep_id: str
    merge_ids: tuple[str, ...]


class Merge(BaseModel):
    plan: MergePlan
    will_change: str
    pending: Pending | None = None  # set on a preview: nothing changed yet


def what(plan: MergePlan) -> str:
    if not plan.merged:
        return "Nothing to merge: every record in merge_ids already points to keep_id."
    names = ", ".join(f"{c.name} ({c.customer_id})" for c in plan.merged)
    return readable(f"Folds {names} into {plan.keep.name} ({plan.keep.customer_id}): {plan.jobs_moved} job(s), "
                    f"{plan.invoices_moved} invoice(s) and {plan.locations_moved} address(es) move, "
                    f"{plan.locations_combined} duplicate address(es) combine, {len(plan.phones_added)} phone(s) and "
                    f"{len(plan.emails_added)} e-mail(s) are added; the merged records become pointers to the kept one.")


async def merge(business: ServedBusiness, actor: str, key: str | None, request: MergeRequest,
                token: str | None) -> Merge:
    """Without `token`, the plan and a token (a preview writes nothing and does not spend the key); with it, the
    merge, once per key."""
    backend = business.backend
    if token is None:
        plan = await backend.merge_customers(request.keep_id, list(request.merge_ids), apply=False)
        pending = await issue(business, actor, OPERATION, request) if plan.merged else None
        return Merge(plan=plan, will_change=what(plan), pending=pending)

    async def write(_: Attempt) -> MergePlan:
        async def act() -> MergePlan:
            return await backend.merge_customers(request.keep_id, list(request.merge_ids), apply=True)

        plan = await confirmed(business, actor, token, OPERATION, request, act)
        await changes.customers_merged(business.db, business.tenant, plan)
        return plan

    plan = await business.writer.run(
        tenant=business.tenant, actor=actor, tool=OPERATION, key=key, request=request, result_type=MergePlan,
        result_id=lambda p: p.keep.customer_id, write=write,
    )
    return Merge(plan=plan, will_change=what(plan))
