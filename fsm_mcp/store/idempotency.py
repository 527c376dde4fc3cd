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

A vendor's API cannot join that transaction, so for a vendor backend (`in_transaction=False`) the
key is claimed ('pending') in a short transaction before the vendor is called, and the
result stored in another after. A retry that finds its key pending knows an earlier call
was cut off (`Attempt.resumed`), and the backend looks at the vendor for what that call
did before writing again (ServiceTitan: the key is on the job, in its externalData).
In this process a retry waits for the call in flight on a per-key lock. A write refused
cleanly (nothing sent, or refused by the vendor) gives its claim back; an uncertain one
keeps it, so the retry reads back first.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import anyio
from pydantic import BaseModel

from fsm_mcp.errors import FsmError, IdempotencyMismatch, WriteUncertain
from fsm_mcp.store import audit
from fsm_mcp.store.db import Database, to_db

M = TypeVar("M", bound=BaseModel)


def arguments_hash(tool: str, arguments: dict[str, Any]) -> str:
    """The digest of a call: its operation and its arguments as canonical JSON (sorted keys)."""
    canonical = json.dumps({"tool": tool, "arguments": arguments}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def request_hash(operation: str, request: BaseModel) -> str:
    """The digest of a request model: every field it has, so a field added to the model is in the hash
    without anyone remembering to add it."""
    return arguments_hash(operation, request.model_dump(mode="json"))


@dataclass(frozen=True, slots=True)
class Attempt:
    key: str | None
    resumed: bool = False  # an earlier call with this key was cut off before its result was stored


NO_KEY = Attempt(None)  # a write made without an idempotency key


class IdempotentWriter:
    def __init__(self, db: Database, in_transaction: bool = True) -> None:
        self.db = db
        self.in_transaction = in_transaction  # the write joins the store's transaction (the local backend)
        self._locks: dict[tuple[str, str], anyio.Lock] = {}

    async def run(
        self,
        *,
        tenant: str,
        actor: str,
        tool: str,
        key: str | None,
        request: BaseModel,
        result_type: type[M],
        result_id: Callable[[M], str],
        write: Callable[[Attempt], Awaitable[M]],
    ) -> M:
        """Run `write` at most once per (tenant, key), and record its result and audit entry. The key's
        digest is that of the whole `request` model, and the audit entry records it (redacted)."""
        arguments = request.model_dump(mode="json")
        digest = arguments_hash(tool, arguments) if key is not None else ""
        if not self.in_transaction:
            return await self._run_outside(tenant, actor, tool, key, digest, arguments, result_type, result_id, write)
        async with self.db.atomic():
            if key is not None:
                stored = await self.db.aread(_stored_result, tenant, key, tool, digest)
                if stored is not None:
                    result = result_type.model_validate_json(stored)
                    await self.db.awrite(audit.record, self.db.clock.now(), tenant, tool, actor, arguments,
                                         result_id(result), True)
                    return result
            result = await write(Attempt(key))
            await self.db.awrite(_finish, self.db.clock.now(), tenant, key, tool, digest, result.model_dump_json(), actor,
                                 arguments, result_id(result))
            return result

    async def _run_outside(
        self, tenant: str, actor: str, tool: str, key: str | None, digest: str, arguments: dict[str, Any],
        result_type: type[M], result_id: Callable[[M], str], write: Callable[[Attempt], Awaitable[M]],
    ) -> M:
        if key is None:
            result = await write(Attempt(None))
            await self.db.awrite(_finish, self.db.clock.now(), tenant, None, tool, digest, "", actor, arguments,
                                 result_id(result))
            return result
        lock = self._locks.setdefault((tenant, key), anyio.Lock())
        try:
            async with lock:
                async with self.db.atomic():
                    stored = await self.db.aread(_stored_result, tenant, key, tool, digest)
                    if stored is not None:
                        result = result_type.model_validate_json(stored)
                        await self.db.awrite(audit.record, self.db.clock.now(), tenant, tool, actor, arguments,
                                         result_id(result), True)
                        return result
                    resumed = await self.db.awrite(_claim, self.db.clock.now(), tenant, key, tool, digest)
                try:
                    result = await write(Attempt(key, resumed))
                except FsmError as exc:
                    if not isinstance(exc, WriteUncertain):
                        await self.db.awrite(_release, tenant, key)
                    raise
                await self.db.awrite(_finish, self.db.clock.now(), tenant, key, tool, digest, result.model_dump_json(),
                                     actor, arguments, result_id(result))
                return result
        finally:
            if not lock.statistics().tasks_waiting:
                self._locks.pop((tenant, key), None)


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


def _claim(conn: sqlite3.Connection, now: datetime, tenant: str, key: str, tool: str, digest: str) -> bool:
    """Mark the key pending; True when it already was (an earlier call was cut off)."""
    row = conn.execute("SELECT tool, args_hash FROM idempotency WHERE tenant_id=? AND key=?", (tenant, key)).fetchone()
    if row is not None:
        if row["tool"] != tool or row["args_hash"] != digest:
            raise IdempotencyMismatch(
                f"idempotency_key: {key!r} was already used for a {row['tool']} call with different arguments; "
                "use a new key for a new request"
            )
        return True
    conn.execute("INSERT INTO idempotency (tenant_id, key, tool, args_hash, state, created_at) VALUES (?,?,?,?, 'pending', ?)",
                 (tenant, key, tool, digest, to_db(now)))
    return False


def _release(conn: sqlite3.Connection, tenant: str, key: str) -> None:
    conn.execute("DELETE FROM idempotency WHERE tenant_id=? AND key=? AND state='pending'", (tenant, key))


def _finish(
    conn: sqlite3.Connection, now: datetime, tenant: str, key: str | None, tool: str, digest: str, result: str, actor: str,
    arguments: dict[str, Any], result_id: str,
) -> None:
    if key is not None:
        conn.execute(
            "INSERT OR REPLACE INTO idempotency (tenant_id, key, tool, args_hash, state, result, created_at) "
            "VALUES (?,?,?,?, 'done', ?, ?)",
            (tenant, key, tool, digest, result, to_db(now)),
        )
    audit.record(conn, now, tenant, tool, actor, arguments, result_id)
