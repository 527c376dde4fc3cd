"""The write guard: a key's record, its write and its audit entry stand or fall together."""

import sqlite3
from pathlib import Path

import anyio
import pytest
from pydantic import BaseModel

from fsm_mcp.errors import Conflict
from fsm_mcp.store import open_store
from fsm_mcp.store.db import Database
from fsm_mcp.store.idempotency import Attempt, IdempotentWriter


class Made(BaseModel):
    row: str


class Ask(BaseModel):
    a: int = 0


def rows(db: Database, table: str) -> int:
    return int(db.read(lambda conn: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]))


def note(conn: sqlite3.Connection, text: str) -> None:
    conn.execute("INSERT INTO audit_log (at, tenant_id, tool, actor, arguments) VALUES ('now', 't', 'x', 'me', ?)", (text,))


@pytest.mark.anyio
async def test_a_write_that_fails_halfway_leaves_nothing_and_does_not_spend_the_key(shared: Path | str) -> None:
    db = open_store(shared)
    writer = IdempotentWriter(db)

    async def half_then_fail(_: Attempt) -> Made:
        await db.awrite(note, "first half")
        raise Conflict("the second half found a clash")

    with pytest.raises(Conflict):
        await writer.run(tenant="t", actor="me", tool="x", key="k", request=Ask(), result_type=Made,
                         result_id=lambda m: m.row, write=half_then_fail)
    assert rows(db, "audit_log") == 0 and rows(db, "idempotency") == 0

    async def whole(_: Attempt) -> Made:
        await db.awrite(note, "whole")
        return Made(row="r1")

    made = await writer.run(tenant="t", actor="me", tool="x", key="k", request=Ask(), result_type=Made,
                            result_id=lambda m: m.row, write=whole)
    assert made.row == "r1" and rows(db, "idempotency") == 1
    db.close()


@pytest.mark.anyio
async def test_a_retry_during_the_first_call_waits_for_its_result(shared: Path | str) -> None:
    db = open_store(shared)
    writer = IdempotentWriter(db)
    calls = 0

    async def slow(_: Attempt) -> Made:
        nonlocal calls
        calls += 1
        await db.awrite(note, "slow")
        await anyio.sleep(0.2)  # the retry arrives meanwhile
        return Made(row=f"r{calls}")

    answers: list[Made] = []

    async def send() -> None:
        answers.append(await writer.run(tenant="t", actor="me", tool="x", key="k", request=Ask(a=1),
                                        result_type=Made, result_id=lambda m: m.row, write=slow))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(send)
            await anyio.sleep(0.05)
            tg.start_soon(send)
    assert calls == 1 and [a.row for a in answers] == ["r1", "r1"]
    db.close()


@pytest.mark.anyio
async def test_a_writer_in_another_process_waits_and_then_replays(shared: Path | str) -> None:
    first, second = open_store(shared), open_store(shared)  # two servers on one file
    calls = 0

    async def write(db: Database) -> Made:
        nonlocal calls
        calls += 1
        await db.awrite(note, "w")
        await anyio.sleep(0.3)
        return Made(row=f"r{calls}")

    answers: list[Made] = []

    async def send(db: Database) -> None:
        answers.append(await IdempotentWriter(db).run(tenant="t", actor="me", tool="x", key="k", request=Ask(),
                                                      result_type=Made, result_id=lambda m: m.row,
                                                      write=lambda _: write(db)))

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(send, first)
            await anyio.sleep(0.1)
            tg.start_soon(send, second)
    assert calls == 1 and [a.row for a in answers] == ["r1", "r1"]
    first.close()
    second.close()
