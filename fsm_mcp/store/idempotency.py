"""Idempotent writes: a key, a hash of the arguments, the stored result.

The same key with the same arguments returns the first result without writing again,
even after a crash or a restart; with different arguments it is refused.

The recovery rule, on the embedded store: the key's record, the write it guards and its
audit entry commit in one transaction (`Database.atomic`). After a crash a key therefore
either has its result, and a retry replays it, or nothing of its call was written, and a
retry does the work once. No timer guesses whether an unfinished call wrote anything.
A retry that arrives while the first call is still running waits for it: in this process
on the writer's limiter, in another on SQLite's write lock (past its busy timeout the
caller gets `Busy`, never a second write).

A backend whose write cannot join that transaction (a vendor's API) cannot use this rule
as it stands: it must write the key into the vendor's record and, for a key with no
result here, read the vendor back before writing again (the connectors issue).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from fsm_mcp.errors import IdempotencyMismatch
from fsm_mcp.store import audit
from fsm_mcp.store.db import Database, to_db, utcnow

M = TypeVar("M", bound=BaseModel)


def arguments_hash(tool: str, arguments: dict[str, Any]) -> str:
    canonical = json.dumps({"tool": tool, "arguments": arguments}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotentWriter:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def run(
        self,
        *,
        tenant: str,
        actor: str,
        tool: str,
        key: str | None,
        arguments: dict[str, Any],
        result_type: type[M],
        result_id: Callable[[M], str],
        write: Callable[[], Awaitable[M]],
    ) -> M:
        """Run `write` at most once per (tenant, key), in one transaction with its key and audit records."""
        digest = arguments_hash(tool, arguments) if key is not None else ""
        async with self.db.atomic():
            if key is not None:
                stored = await self.db.aread(_stored_result, tenant, key, tool, digest)
                if stored is not None:
                    result = result_type.model_validate_json(stored)
                    await self.db.awrite(audit.record, tenant, tool, actor, arguments, result_id(result), True)
                    return result
            result = await write()
            await self.db.awrite(_finish, tenant, key, tool, digest, result.model_dump_json(), actor, arguments,
                                 result_id(result))
            return result


def _stored_result(conn: sqlite3.Connection, tenant: str, key: str, tool: str, digest: str) -> str | None:
    row = conn.execute(
        "SELECT tool, args_hash, state, result FROM idempotency WHERE tenant_id=? AND key=?", (tenant, key)
    ).fetchone()
    # A 'pending' row was left by a version that claimed keys in a transaction of their own; nothing says
    # whether its write happened, so it is treated as the absent record it would be now.
    if row is None or row["state"] != "done":
        return None
    if row["tool"] != tool or row["args_hash"] != digest:
        raise IdempotencyMismatch(
            f"idempotency_key: {key!r} was already used for a {row['tool']} call with different arguments; "
            "use a new key for a new request, or resend the original arguments to get the original result"
        )
    return str(row["result"])


def _finish(
    conn: sqlite3.Connection, tenant: str, key: str | None, tool: str, digest: str, result: str, actor: str,
    arguments: dict[str, Any], result_id: str,
) -> None:
    if key is not None:
        conn.execute(
            "INSERT OR REPLACE INTO idempotency (tenant_id, key, tool, args_hash, state, result, created_at) "
            "VALUES (?,?,?,?, 'done', ?, ?)",
            (tenant, key, tool, digest, result, to_db(utcnow())),
        )
    audit.record(conn, tenant, tool, actor, arguments, result_id)
