"""Idempotent writes: a key, a hash of the arguments, the stored result.

The same key with the same arguments returns the first result without writing again,
even after a restart; with different arguments it is refused. Concurrent calls with one
key in this process wait for each other; another process holding the key gets `Busy`.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import anyio
from pydantic import BaseModel

from fsm_mcp.errors import Busy, IdempotencyMismatch
from fsm_mcp.store import audit
from fsm_mcp.store.db import Database, from_db, to_db, utcnow

M = TypeVar("M", bound=BaseModel)
STALE = timedelta(seconds=120)  # a pending claim older than this was left by a crash
_STRIPES = 64


def arguments_hash(tool: str, arguments: dict[str, Any]) -> str:
    canonical = json.dumps({"tool": tool, "arguments": arguments}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotentWriter:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._locks = [anyio.Lock() for _ in range(_STRIPES)]

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
        """Run `write` at most once per (tenant, key); audit every call that writes or replays."""
        if key is None:
            result = await write()
            await self.db.awrite(audit.record, tenant, tool, actor, arguments, result_id(result))
            return result
        digest = arguments_hash(tool, arguments)
        async with self._locks[hash((tenant, key)) % _STRIPES]:
            stored = await self.db.awrite(self._claim, tenant, key, tool, digest)
            if stored is not None:
                result = result_type.model_validate_json(stored)
                await self.db.awrite(audit.record, tenant, tool, actor, arguments, result_id(result), True)
                return result
            try:
                result = await write()
            except BaseException:
                await self.db.awrite(self._release, tenant, key)
                raise
            await self.db.awrite(self._finish, tenant, key, result.model_dump_json(), tool, actor, arguments, result_id(result))
            return result

    def _claim(self, conn: sqlite3.Connection, tenant: str, key: str, tool: str, digest: str) -> str | None:
        row = conn.execute(
            "SELECT tool, args_hash, state, result, created_at FROM idempotency WHERE tenant_id=? AND key=?",
            (tenant, key),
        ).fetchone()
        if row is None or (row["state"] == "pending" and utcnow() - from_db(row["created_at"]) > STALE):
            conn.execute(
                "INSERT OR REPLACE INTO idempotency (tenant_id, key, tool, args_hash, state, result, created_at) "
                "VALUES (?,?,?,?, 'pending', NULL, ?)",
                (tenant, key, tool, digest, to_db(utcnow())),
            )
            return None
        if row["tool"] != tool or row["args_hash"] != digest:
            raise IdempotencyMismatch(
                f"idempotency_key: {key!r} was already used for a {row['tool']} call with different arguments; "
                "use a new key for a new request, or resend the original arguments to get the original result"
            )
        if row["state"] == "pending":
            raise Busy(f"idempotency_key: a call with {key!r} is still running; retry in a few seconds with the same key")
        return str(row["result"])

    def _release(self, conn: sqlite3.Connection, tenant: str, key: str) -> None:
        conn.execute("DELETE FROM idempotency WHERE tenant_id=? AND key=? AND state='pending'", (tenant, key))

    def _finish(
        self, conn: sqlite3.Connection, tenant: str, key: str, result: str, tool: str, actor: str,
        arguments: dict[str, Any], result_id: str,
    ) -> None:
        conn.execute(
            "UPDATE idempotency SET state='done', result=? WHERE tenant_id=? AND key=?", (result, tenant, key)
        )
        audit.record(conn, tenant, tool, actor, arguments, result_id)
