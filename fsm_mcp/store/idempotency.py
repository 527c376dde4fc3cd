"""Idempotent writes: a key, a hash of the arguments, the stored result.

The same key with the same arguments returns the first result without writing again, in this
process or any other sharing the store, even after a crash or a restart; with different
arguments it is refused.

On the embedded store (`in_transaction=True`) the key's record, the write it guards and its
audit entry commit in one transaction (`Store.atomic`). After a crash a key therefore either
has its result, and a retry replays it, or nothing of its call was written, and a retry does the
work once. A retry that arrives meanwhile waits on the store's write lock (in this process on the
writer's limiter, in another on SQLite's lock; past its busy timeout the caller gets `Busy`).

A vendor's API cannot join a transaction, so for a vendor backend the key row is leased, as
Stripe keeps its keys on PostgreSQL (Brandur Leach, "Implementing Stripe-like idempotency keys"):

- **The lease.** The first call claims the key in a short transaction: a 'pending' row naming its
  holder, with `locked_at` and `lease_until`. The holder renews it while it works (every third of
  `LEASE`). A concurrent call with the key, here or in another process, finds it held and waits
  (bounded by `WAIT`, polling the row on the read connection, which takes no lock), then replays
  the stored result; or, once the lease has lapsed (its holder died), takes it over. A call whose
  wait runs out gets `Busy`: retry with the same key. Never two writers: every write the holder
  makes to the row is conditional on still holding it, and a holder that lost its lease stops.
- **Recovery points.** After each step of a multi-step vendor booking (customer created, place
  created, job created) the holder records the step and its ids on the row (`Attempt.record`), in
  the same short transaction as the directory's copy of what the vendor made. Before a step whose
  choice a resumed call could not make again the same way (a new customer: by the time it resumes,
  the directory may hold look-alikes, or the customer itself), the holder records the step under
  way (`Attempt.begin`).
- **Recovery.** A call that takes a lapsed or given-up lease over is `resumed`: it continues from
  the recorded steps with the recorded ids (`Attempt.recorded`), a step recorded under way where
  it was (`Attempt.in_flight`), and only for the step that was in flight does it look at the
  vendor, among records created since the last recovery point (`Attempt.since`): by the key where
  the record carries one (a ServiceTitan job), otherwise by what makes it this booking (see the
  connectors' booking modules).

- **What follows the write.** The events a write reports (the outbox) are staged while it runs (`stage`) and
  commit in the transaction that records its key's result (`_finish_held`): a call cut off after the vendor
  answered has written neither, and the retry that resumes it writes both, once. Never the events without the
  result (a resumed retry would report its change again), nor the result without its events (they would be lost).

A write refused cleanly (nothing sent, or refused by the vendor) before any recovery point of a
step done gives its key back, and with it a step it had begun (its write was refused, so nothing of
it exists); any other failure lets the lease go but keeps the row, so the retry resumes.

On PostgreSQL the same protocol maps one to one: the claim is `INSERT ... ON CONFLICT DO NOTHING`
then `SELECT ... FOR UPDATE` of the key row and a conditional `UPDATE`, all in one short
transaction (never held across a vendor call); the fenced writes are `UPDATE ... WHERE holder=$1`.
The local path's one transaction takes the row with `FOR UPDATE` instead of SQLite's write lock.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import anyio
from pydantic import BaseModel

from fsm_mcp.errors import Busy, FsmError, IdempotencyMismatch, WriteUncertain
from fsm_mcp.store import Store, audit
from fsm_mcp.store.db import from_db, to_db
from fsm_mcp.store.leases import PROCESS

M = TypeVar("M", bound=BaseModel)

LEASE = timedelta(seconds=30)  # a holder silent this long is taken to have died; it renews every third of it
WAIT = 30.0  # seconds a call waits for another call with its key before it is told to retry
UNDER_WAY = ""  # a step's recorded value between `Attempt.begin` and its recovery point


Staged = Callable[[Any, datetime], object]  # (conn, now): a write that commits with the key's result
_staged: ContextVar[list[Staged] | None] = ContextVar("fsm_mcp_staged", default=None)


def stage(write: Staged) -> bool:
    """Inside a vendor write run by `IdempotentWriter`, keep `write` to run in the transaction that records the
    key's result, and answer True; anywhere else (the local store's one transaction, no writer) False: the
    caller writes now."""
    staged = _staged.get()
    if staged is None:
        return False
    staged.append(write)
    return True


def _flush(conn: Any, now: datetime, staged: Sequence[Staged]) -> None:
    for write in staged:
        write(conn, now)


def arguments_hash(tool: str, arguments: dict[str, Any]) -> str:
    """The digest of a call: its operation and its arguments as canonical JSON (sorted keys)."""
    canonical = json.dumps({"tool": tool, "arguments": arguments}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def request_hash(operation: str, request: BaseModel) -> str:
    """The digest of a request model: every field it has, so a field added to the model is in the hash
    without anyone remembering to add it."""
    return arguments_hash(operation, request.model_dump(mode="json"))


class KeyBusy(Busy):
    """Another call holds this key's lease (or held it and took it over from this one)."""

    def __init__(self, key: str, taken_over: bool = False) -> None:
        what = ("another call took over this key's unfinished work while this one was stalled" if taken_over
                else "another call with this key is still working on it")
        super().__init__(f"idempotency_key: {what}; retry in a few seconds with the same idempotency_key and "
                         "arguments to get its result", field="idempotency_key")


@dataclass(frozen=True, slots=True)
class _Held:
    """The key row a call holds, and how long each renewal lasts."""

    tenant: str
    key: str
    holder: str
    ttl: timedelta


class Attempt:
    """One call's turn at its key: whether an earlier call with it was cut off (`resumed`), the steps that
    call recorded (`progress`: step -> ids), and since when this call's unrecorded writes may date (`since`:
    the last recovery point, or the claim). Without a lease (no key, or the local store's one transaction)
    there is nothing to record and `record` only runs its write."""

    __slots__ = ("_cut_off", "_held", "key", "progress", "resumed", "since")

    def __init__(self, key: str | None, resumed: bool = False, since: datetime | None = None,
                 progress: dict[str, str] | None = None, held: _Held | None = None) -> None:
        self.key, self.resumed, self.since = key, resumed, since
        self.progress = dict(progress or {})
        self._held = held
        self._cut_off = frozenset(s for s, v in self.progress.items() if v == UNDER_WAY) if resumed else frozenset()

    def recorded(self, step: str) -> str | None:
        """What an earlier holder of this key recorded for `step` (its ids), if it got that far."""
        return self.progress.get(step) or None

    def in_flight(self, step: str) -> bool:
        """Whether the call this one resumes was cut off inside `step`: it had begun it (`begin`) and not
        recorded it done, so the step's vendor write may have been made."""
        return step in self._cut_off

    @property
    def made(self) -> bool:
        """Whether a step of this key's write is recorded done (a step only begun made nothing yet)."""
        return any(self.progress.values())

    async def begin(self, db: Store, step: str) -> None:
        """A recovery point before `step`'s vendor write: the step is under way. A call that resumes this one
        takes the step up where it was (`in_flight`) instead of choosing again. Kept as first recorded, so
        `since` stays before the write of whichever holder sent it first."""
        if step not in self.progress:
            await self.record(db, step, UNDER_WAY)

    async def record(self, db: Store, step: str, value: str, write: Callable[..., object] | None = None,
                     *args: object) -> None:
        """A recovery point: `step` is done and made `value`. `write(conn, *args)` (the directory's copy of what
        the vendor made) commits in the same transaction; both roll back if this call no longer holds the key."""
        if self._held is None:
            if write is not None:
                await db.awrite(write, *args)
            return
        if write is None and self.progress.get(step) == value:
            return  # the step recorded it already
        progress = {**self.progress, step: value}
        now = db.clock.now()
        await db.awrite(_record, self._held, now, step, json.dumps(progress, sort_keys=True), write, args)
        self.progress, self.since = progress, now


NO_KEY = Attempt(None)  # a write made without an idempotency key


@dataclass(slots=True)
class _Claim:
    result: str | None = None  # the key's stored result: replay it
    resumed: bool = False
    since: datetime | None = None
    progress: dict[str, str] = field(default_factory=dict)


class IdempotentWriter:
    def __init__(self, db: Store, in_transaction: bool = True, *, lease: timedelta = LEASE,
                 wait: float = WAIT) -> None:
        self.db = db
        self.in_transaction = in_transaction  # the write joins the store's transaction (the local backend)
        self.lease, self.wait = lease, wait
        # Calls in this process with one key queue here rather than all polling the row; the row's lease is
        # what keeps two processes from writing.
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
            if key is None:
                staged: list[Staged] = []
                token = _staged.set(staged)
                try:
                    result = await write(NO_KEY)
                finally:
                    _staged.reset(token)
                await self.db.awrite(_finish, self.db.clock.now(), tenant, None, tool, digest, "", actor, arguments,
                                     result_id(result), staged)
                return result
            return await self._queued(tenant, actor, tool, key, digest, arguments, result_type, result_id, write)
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

    async def _queued(
        self, tenant: str, actor: str, tool: str, key: str, digest: str, arguments: dict[str, Any],
        result_type: type[M], result_id: Callable[[M], str], write: Callable[[Attempt], Awaitable[M]],
    ) -> M:
        deadline = anyio.current_time() + self.wait
        lock = self._locks.setdefault((tenant, key), anyio.Lock())
        acquired = False
        try:
            with anyio.move_on_after(self.wait):
                await lock.acquire()
                acquired = True
            if not acquired:
                raise KeyBusy(key)
            try:
                return await self._leased(tenant, actor, tool, key, digest, arguments, result_type, result_id, write,
                                          deadline)
            finally:
                lock.release()
        finally:
            if not lock.locked() and not lock.statistics().tasks_waiting:
                self._locks.pop((tenant, key), None)

    async def _leased(
        self, tenant: str, actor: str, tool: str, key: str, digest: str, arguments: dict[str, Any],
        result_type: type[M], result_id: Callable[[M], str], write: Callable[[Attempt], Awaitable[M]], deadline: float,
    ) -> M:
        held = _Held(tenant, key, f"{PROCESS}:{uuid.uuid4().hex[:8]}", self.lease)
        claim = await self._claim(held, tool, digest, deadline)
        if claim.result is not None:
            result = result_type.model_validate_json(claim.result)
            await self.db.awrite(audit.record, self.db.clock.now(), tenant, tool, actor, arguments, result_id(result), True)
            return result
        attempt = Attempt(key, claim.resumed, claim.since, claim.progress, held)
        staged: list[Staged] = []
        token = _staged.set(staged)
        try:
            result = await self._working(held, attempt, write)
        except FsmError as exc:
            # Refused cleanly with nothing made and no earlier call to account for: the key is given back, with the
            # step it had begun (its write was refused), so a fresh call with the key chooses afresh.
            forget = not isinstance(exc, WriteUncertain | KeyBusy) and not attempt.resumed and not attempt.made
            await self._let_go(held, forget)
            raise
        except BaseException:
            await self._let_go(held, False)  # cut off or a bug: the next call with the key resumes
            raise
        finally:
            _staged.reset(token)
        await self.db.awrite(_finish_held, self.db.clock.now(), held, tool, result.model_dump_json(), actor, arguments,
                             result_id(result), staged)
        return result

    async def _claim(self, held: _Held, tool: str, digest: str, deadline: float) -> _Claim:
        """The key's lease, or its stored result; waits while another live holder has it."""
        delay = 0.005
        while True:
            claim = await self.db.awrite(_take, self.db.clock.now(), held, tool, digest)
            if claim is not None:
                return claim
            while True:  # poll on the read connection (no lock) until the row is done or its lease has lapsed
                if anyio.current_time() + delay > deadline:
                    raise KeyBusy(held.key)
                await anyio.sleep(delay)
                delay = min(delay * 2, 0.1)
                row = await self.db.apeek("SELECT state, holder, lease_until FROM idempotency WHERE tenant_id=? AND key=?",
                                   (held.tenant, held.key))
                if row is None or row[0] == "done" or row[1] is None or str(row[2]) <= to_db(self.db.clock.now()):
                    break

    async def _working(self, held: _Held, attempt: Attempt, write: Callable[[Attempt], Awaitable[M]]) -> M:
        """`write(attempt)`, with the lease renewed while it runs."""

        async def renew() -> None:
            while True:
                await anyio.sleep(held.ttl.total_seconds() / 3)
                with suppress(FsmError, sqlite3.Error):  # a missed renewal only brings the lapse nearer
                    await self.db.awrite(_renew, held, self.db.clock.now())

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(renew)
                try:
                    result = await write(attempt)
                finally:
                    tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:  # the write's own failure, not the group's
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        return result

    async def _let_go(self, held: _Held, forget: bool) -> None:
        with anyio.CancelScope(shield=True), suppress(FsmError, sqlite3.Error):  # else the lease lapses by itself
            await self.db.awrite(_give_up, held, forget)


# ----- the key row -----

def _same(row: sqlite3.Row, key: str, tool: str, digest: str) -> None:
    if row["tool"] != tool or row["args_hash"] != digest:
        raise IdempotencyMismatch(
            f"idempotency_key: {key!r} was already used for a {row['tool']} call with different arguments; "
            "use a new key for a new request, or resend the original arguments to get the original result"
        )


def _stored_result(conn: sqlite3.Connection, tenant: str, key: str, tool: str, digest: str) -> str | None:
    row = conn.execute(
        "SELECT tool, args_hash, state, result FROM idempotency WHERE tenant_id=? AND key=?", (tenant, key)
    ).fetchone()
    # A 'pending' row was left by a version that claimed keys in a transaction of their own; nothing says
    # whether its write happened, so it is treated as the absent record it would be now.
    if row is None or row["state"] != "done":
        return None
    _same(row, key, tool, digest)
    return str(row["result"])


def _take(conn: sqlite3.Connection, now: datetime, held: _Held, tool: str, digest: str) -> _Claim | None:
    """Claim the key (new, or a lapsed or given-up lease, which resumes), or its stored result; None while
    another holder's lease runs."""
    row = conn.execute(
        "SELECT tool, args_hash, state, result, holder, lease_until, phase_at, progress, created_at FROM idempotency "
        "WHERE tenant_id=? AND key=?", (held.tenant, held.key)).fetchone()
    until = to_db(now + held.ttl)
    if row is None:
        conn.execute("INSERT INTO idempotency (tenant_id, key, tool, args_hash, state, created_at, holder, locked_at, "
                     "lease_until) VALUES (?,?,?,?, 'pending', ?,?,?,?)",
                     (held.tenant, held.key, tool, digest, to_db(now), held.holder, to_db(now), until))
        return _Claim(since=now)
    _same(row, held.key, tool, digest)
    if row["state"] == "done":
        return _Claim(result=str(row["result"]))
    if row["holder"] is not None and row["lease_until"] is not None and row["lease_until"] > to_db(now):
        return None
    conn.execute("UPDATE idempotency SET holder=?, locked_at=?, lease_until=? WHERE tenant_id=? AND key=?",
                 (held.holder, to_db(now), until, held.tenant, held.key))
    return _Claim(resumed=True, since=from_db(row["phase_at"] or row["created_at"]),
                  progress=json.loads(row["progress"] or "{}"))


def _fenced(conn: sqlite3.Connection, held: _Held, sets: str, values: tuple[object, ...]) -> None:
    """An update of the row this call holds; KeyBusy (and the transaction rolled back) if it holds it no more."""
    cursor = conn.execute(f"UPDATE idempotency SET {sets} WHERE tenant_id=? AND key=? AND holder=? AND state='pending'",
                          (*values, held.tenant, held.key, held.holder))
    if cursor.rowcount != 1:
        raise KeyBusy(held.key, taken_over=True)


def _record(conn: sqlite3.Connection, held: _Held, now: datetime, step: str, progress: str,
            write: Callable[..., object] | None, args: tuple[object, ...]) -> None:
    if write is not None:
        write(conn, *args)
    _fenced(conn, held, "phase=?, phase_at=?, progress=?, locked_at=?, lease_until=?",
            (step, to_db(now), progress, to_db(now), to_db(now + held.ttl)))


def _renew(conn: sqlite3.Connection, held: _Held, now: datetime) -> None:
    conn.execute("UPDATE idempotency SET locked_at=?, lease_until=? WHERE tenant_id=? AND key=? AND holder=? "
                 "AND state='pending'", (to_db(now), to_db(now + held.ttl), held.tenant, held.key, held.holder))


def _give_up(conn: sqlite3.Connection, held: _Held, forget: bool) -> None:
    if forget:
        conn.execute("DELETE FROM idempotency WHERE tenant_id=? AND key=? AND holder=? AND state='pending'",
                     (held.tenant, held.key, held.holder))
    else:
        conn.execute("UPDATE idempotency SET holder=NULL, lease_until=NULL WHERE tenant_id=? AND key=? AND holder=? "
                     "AND state='pending'", (held.tenant, held.key, held.holder))


def _finish_held(conn: sqlite3.Connection, now: datetime, held: _Held, tool: str, result: str, actor: str,
                 arguments: dict[str, Any], result_id: str, staged: Sequence[Staged] = ()) -> None:
    _fenced(conn, held, "state='done', result=?, holder=NULL, lease_until=NULL", (result,))
    audit.record(conn, now, held.tenant, tool, actor, arguments, result_id)
    _flush(conn, now, staged)  # the write's events: with its result or not at all


def _finish(
    conn: sqlite3.Connection, now: datetime, tenant: str, key: str | None, tool: str, digest: str, result: str, actor: str,
    arguments: dict[str, Any], result_id: str, staged: Sequence[Staged] = (),
) -> None:
    if key is not None:
        conn.execute(
            "INSERT INTO idempotency (tenant_id, key, tool, args_hash, state, result, created_at) "
            "VALUES (?,?,?,?, 'done', ?, ?) ON CONFLICT (tenant_id, key) DO UPDATE SET tool=excluded.tool, "
            "args_hash=excluded.args_hash, state=excluded.state, result=excluded.result, created_at=excluded.created_at, "
            "holder=NULL, locked_at=NULL, lease_until=NULL, phase=NULL, phase_at=NULL, progress='{}'",
            (tenant, key, tool, digest, result, to_db(now)),
        )
    audit.record(conn, now, tenant, tool, actor, arguments, result_id)
    _flush(conn, now, staged)
