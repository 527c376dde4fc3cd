"""Destructive operations act in two calls: a preview that changes nothing and hands back a
token bound to the actor, the operation and the exact request, then the same request with
that token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel

from fsm_mcp.businesses import ServedBusiness
from fsm_mcp.errors import FsmError, WriteUncertain
from fsm_mcp.services.requests import Request

R = TypeVar("R")


class Pending(BaseModel):
    """A previewed action, waiting for a person's yes: present `token` with the same request before `expires_at`."""

    token: str
    expires_at: datetime


async def issue(business: ServedBusiness, actor: str, operation: str, request: Request) -> Pending:
    token, expires = await business.confirmations.issue(actor, operation, request.model_dump(mode="json"))
    return Pending(token=token, expires_at=expires)


async def confirmed(business: ServedBusiness, actor: str, token: str, operation: str, request: Request,
                    action: Callable[[], Awaitable[R]]) -> R:
    """Run `action` if `token` confirms exactly this request; the token is spent with it. On the local store both
    commit in one transaction; over a vendor, a clean refusal gives the token back, an uncertain write keeps it
    spent (the preview would no longer be true)."""
    await business.confirmations.spend(token, actor, operation, request.model_dump(mode="json"))
    try:
        return await action()
    except WriteUncertain:
        raise
    except FsmError:
        if not business.writer.in_transaction:
            await business.confirmations.give_back(token)
        raise
