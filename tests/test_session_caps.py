"""Sessions capped per caller and per business inside the process's pool: a key that opens sessions
in a loop fills only its own share, other callers and businesses still get in, and a session that
ends (DELETE, or idle) gives its slot back. Over real HTTP on loopback."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from tests.http_rig import ENV, new_key, serving
from tests.test_access_http import INIT, MCP_HEADERS
from tests.test_businesses import two_businesses

CAPS = {"FSM_MCP_SERVE_MAX_SESSIONS": "20", "FSM_MCP_SERVE_MAX_SESSIONS_PER_CALLER": "3",
        "FSM_MCP_SERVE_MAX_SESSIONS_PER_BUSINESS": "5"}


async def open_session(http: httpx2.AsyncClient, base: str, key: str) -> httpx2.Response:
    return await http.post(base + "/mcp", content=json.dumps(INIT),
                           headers={**MCP_HEADERS, "Authorization": f"Bearer {key}"})


async def end_session(http: httpx2.AsyncClient, base: str, key: str, opened: httpx2.Response) -> None:
    ended = await http.delete(base + "/mcp", headers={"Authorization": f"Bearer {key}",
                                                      "mcp-session-id": opened.headers["mcp-session-id"],
                                                      "mcp-protocol-version": "2025-06-18"})
    assert ended.status_code == 200, ended.text


@pytest.mark.anyio
async def test_one_key_opening_sessions_in_a_loop_fills_only_its_share_and_others_still_get_in(tmp_path: Path) -> None:
    env = {**two_businesses(tmp_path), **CAPS}
    db = tmp_path / "caps.db"
    looping = new_key(db, "looping", "customers:read", env=env, business="acme")
    colleague = new_key(db, "colleague", "customers:read", env=env, business="acme")
    other = new_key(db, "other", "customers:read", env=env, business="bolt")
    with serving(db, env=env) as base, anyio.fail_after(60):
        async with httpx2.AsyncClient(timeout=10) as http:
            mine = [await open_session(http, base, looping) for _ in range(3)]
            assert [r.status_code for r in mine] == [200, 200, 200]
            refused = await open_session(http, base, looping)
            assert refused.status_code == 429, refused.text
            said = refused.json()["error"]["message"]
            assert "key:looping" in said and "at most 3" in said and "max_sessions_per_caller" in said

            theirs = [await open_session(http, base, colleague) for _ in range(2)]
            assert [r.status_code for r in theirs] == [200, 200]
            full = await open_session(http, base, colleague)
            assert full.status_code == 429 and "business: at most 5" in full.json()["error"]["message"]

            # another business is not held up by the first one's callers
            assert [(await open_session(http, base, other)).status_code for _ in range(3)] == [200, 200, 200]

            await end_session(http, base, looping, mine[0])
            assert (await open_session(http, base, looping)).status_code == 200  # its slot came back
            assert (await open_session(http, base, looping)).status_code == 429


@pytest.mark.anyio
async def test_at_the_default_caps_a_burst_of_sessions_from_one_key_leaves_room_for_other_businesses(
        tmp_path: Path) -> None:
    env = two_businesses(tmp_path)
    db = tmp_path / "burst.db"
    looping = new_key(db, "looping", "customers:read", env=env, business="acme")
    other = new_key(db, "other", "customers:read", env=env, business="bolt")
    statuses: list[int] = []
    with serving(db, env=env) as base, anyio.fail_after(90):
        async with httpx2.AsyncClient(timeout=30, limits=httpx2.Limits(max_connections=70)) as http:

            async def one() -> None:
                statuses.append((await open_session(http, base, looping)).status_code)

            async with anyio.create_task_group() as burst:  # all at once: none may slip past the count
                for _ in range(60):
                    burst.start_soon(one)
            assert (await open_session(http, base, other)).status_code == 200
    assert sorted(statuses) == [200] * 50 + [429] * 10


@asynccontextmanager
async def handshake_client(base: str, key: str) -> AsyncIterator[Client]:
    """A client of the initialize handshake, as every desktop client is: it holds a session (2026-07-28 needs none)."""
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as http, \
            Client(streamable_http_client(base + "/mcp", http_client=http), mode="legacy") as mcp_client:
        yield mcp_client


@pytest.mark.anyio
async def test_an_mcp_client_past_its_cap_is_told_the_cap(tmp_path: Path) -> None:
    db = tmp_path / "client.db"
    key = new_key(db, "voice", "customers:read")
    env = {**ENV, "FSM_MCP_SERVE_MAX_SESSIONS_PER_CALLER": "1"}
    with serving(db, env=env) as base, anyio.fail_after(60):
        async with handshake_client(base, key) as first:
            await first.list_tools()
            cap = pytest.RaisesExc(MCPError, match=r"at most 1 at once \(max_sessions_per_caller\)")
            with pytest.RaisesGroup(cap, flatten_subgroups=True):
                async with handshake_client(base, key):
                    pass
        async with handshake_client(base, key) as again:  # the first one ended its session as it closed
            assert (await again.list_tools()).tools


@pytest.mark.anyio
async def test_an_idle_session_gives_its_slot_back_to_its_caller(tmp_path: Path) -> None:
    db = tmp_path / "idle.db"
    key = new_key(db, "voice", "customers:read")
    env = {**ENV, "FSM_MCP_SERVE_MAX_SESSIONS_PER_CALLER": "2", "FSM_MCP_SERVE_SESSION_IDLE_TIMEOUT": "1"}
    with serving(db, env=env) as base:
        async with httpx2.AsyncClient(timeout=10) as http:
            assert [(await open_session(http, base, key)).status_code for _ in range(2)] == [200, 200]
            refused = await open_session(http, base, key)
            assert refused.status_code == 429 and "idle 1 s" in refused.json()["error"]["message"]
            with anyio.fail_after(15):  # the idle timeout is 1 s
                while (await open_session(http, base, key)).status_code == 429:
                    await anyio.sleep(0.1)
