"""The local user over stdio is the person at this machine: a script of theirs is not held to a
remote agent's 240 calls and 60 writes a minute, unless a limit is asked for. A remote caller's
calls and writes are two counts, even when their limits are equal."""

import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from fsm_mcp.access.callers import SCOPES, Caller
from fsm_mcp.server import build_server
from fsm_mcp.settings import Settings
from tests.conftest import BUSINESS, MONDAY_9, NEW_CALLER, call, fail

ENV = {**os.environ, "FSM_MCP_TIMEZONE": "America/Chicago", "FSM_MCP_LOG_LEVEL": "WARNING"}


def over_stdio(db: Path, **env: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "fsm_mcp", "serve", "--db", str(db)],
                                 env={**ENV, **env})


async def book(client: Client, n: int) -> dict[str, Any]:
    return await client.call_tool("create_job", {"customer": NEW_CALLER, "job_type": "hvac", "summary": "no heat",
                                                 "idempotency_key": f"script-{n}", "allow_duplicate": True,
                                                 **MONDAY_9})  # type: ignore[return-value]


@pytest.mark.anyio
async def test_a_local_script_over_stdio_is_not_held_to_a_remote_callers_limits(tmp_path: Path) -> None:
    with anyio.fail_after(120):
        async with Client(over_stdio(tmp_path / "s.db")) as client:
            booked = [await book(client, n) for n in range(61)]  # one more than a remote caller's 60 writes
            looked = [await client.call_tool("lookup_customer", {"phone": "3125550188"}) for _ in range(180)]
    refused = [r.content[0].text for r in [*booked, *looked] if r.is_error]  # type: ignore[attr-defined, union-attr]
    assert refused == [] and len(booked) + len(looked) == 241  # one more than a remote caller's 240 calls


@pytest.mark.anyio
async def test_a_limit_for_the_local_user_is_kept_when_one_is_set(tmp_path: Path) -> None:
    limited = over_stdio(tmp_path / "l.db", FSM_MCP_SERVE_LOCAL_WRITES_PER_MINUTE="2",
                         FSM_MCP_SERVE_LOCAL_CALLS_PER_MINUTE="5")
    with anyio.fail_after(60):
        async with Client(limited) as client:
            assert not (await book(client, 1)).is_error and not (await book(client, 2)).is_error
            third = await book(client, 3)
            assert third.is_error and third.content[0].text.startswith(  # type: ignore[union-attr]
                "Too many writes from this caller: at most 2 a minute")
            for _ in range(3):  # reads go on until the call limit
                await call(client, "lookup_customer", phone="3125550188")
            said = await fail(client, "lookup_customer", phone="3125550188")
            assert said.startswith("Too many calls from this caller: at most 5 a minute")


@pytest.mark.anyio
async def test_a_remote_callers_writes_are_counted_once_when_both_limits_are_equal(tmp_path: Path) -> None:
    settings = Settings.load(db=tmp_path / "e.db", env={"FSM_MCP_SERVE_WRITES_PER_MINUTE": "4",
                                                      "FSM_MCP_SERVE_CALLS_PER_MINUTE": "4"})
    agent = Caller("key:voice-bot", None, frozenset(SCOPES))
    async with Client(build_server(settings.model_copy(update={"business": BUSINESS}), caller=agent)) as client:
        for n in range(4):
            await call(client, "create_job", customer=NEW_CALLER, job_type="hvac", summary="no heat",
                       idempotency_key=f"eq-{n}", allow_duplicate=True, **MONDAY_9)
        said = await fail(client, "lookup_customer", phone="3125550188")
        assert said.startswith("Too many calls from this caller: at most 4 a minute")
