"""Confirmation of destructive actions: the first call previews and returns a token; only a
second call with that token acts.

A token is bound to the caller who asked, the business, the tool and the exact arguments, and
lasts `TTL`. It is kept in the store as its digest, so every process sharing the store knows
it, and it is spent in the same transaction as the action it allows (on the local store), so
a crash cannot spend it without acting or act without spending it. A stale, spent, foreign or
mismatched token is refused with what to do instead."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from fsm_mcp.errors import InvalidInput
from fsm_mcp.store import Store
from fsm_mcp.store import confirmations as stored
from fsm_mcp.store.db import from_db, to_db
from fsm_mcp.store.idempotency import arguments_hash

TTL = timedelta(minutes=5)
PREFIX = "cf_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Confirmations:
    def __init__(self, db: Store, tenant: str) -> None:
        self.db = db
        self.tenant = tenant

    async def issue(self, actor: str, tool: str, arguments: dict[str, Any]) -> tuple[str, datetime]:
        token = PREFIX + secrets.token_urlsafe(24)
        now = self.db.clock.now()
        expires = now + TTL

        await self.db.awrite(stored.insert, self.tenant, _digest(token), tool, arguments_hash(tool, arguments), actor,
                             to_db(expires), to_db(now - TTL))
        return token, expires

    async def spend(self, token: str, actor: str, tool: str, arguments: dict[str, Any]) -> None:
        """Spend the token on this call, or raise saying why it cannot be."""
        again = "Call again without confirmation_token for a fresh preview and token."
        digest = _digest(token)
        now = self.db.clock.now()

        def use(conn: Any) -> str | None:
            row = stored.find(conn, self.tenant, digest)
            if row is None:
                return f"not a token this server issued for this business. {again}"
            their_tool, their_arguments, their_actor, expires, used = row
            if used is not None:
                return f"already used at {used}; a token confirms one action. {again}"
            if from_db(expires) < now:
                return f"expired at {expires} (tokens last {int(TTL.total_seconds() // 60)} minutes). {again}"
            if their_actor != actor:
                return f"issued to another caller. {again}"
            if their_tool != tool or their_arguments != arguments_hash(tool, arguments):
                return (f"issued for {their_tool} with other arguments; a token confirms exactly the previewed "
                        f"action. {again}")
            stored.mark_used(conn, self.tenant, digest, to_db(now))
            return None

        if not token.startswith(PREFIX):
            raise InvalidInput("confirmation_token", f"not a confirmation token. {again}")
        if problem := await self.db.awrite(use):
            raise InvalidInput("confirmation_token", problem)

    async def give_back(self, token: str) -> None:
        """The action was refused cleanly (nothing done): the token may be used again."""
        await self.db.awrite(stored.mark_used, self.tenant, _digest(token), None)
