"""Sessions cannot pile up: a capped number, closed when idle; or none at all (--stateless), so
that several processes behind one load balancer, sharing one store, serve the same business."""

import itertools
import json
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from fsm_mcp.access.callers import SCOPES
from tests.conftest import MONDAY_9, NEW_CALLER, call
from tests.http_rig import ENV, new_key, serving
from tests.test_access_http import INIT, post


class RoundRobin(httpx2.AsyncBaseTransport):
    """A load balancer in miniature: each request goes to the next server in turn."""

    def __init__(self, bases: list[str]) -> None:
        self.bases = itertools.cycle(bases)
        self.inner = httpx2.AsyncHTTPTransport()
        self.seen: list[str] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        base = httpx2.URL(next(self.bases))
        self.seen.append(str(base.port))
        request.url = request.url.copy_with(host=base.host, port=base.port)
        request.headers["host"] = f"{base.host}:{base.port}"
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.anyio
async def test_two_stateless_processes_on_one_store_serve_one_conversation(tmp_path: Path) -> None:
    db = tmp_path / "lb.db"
    key = new_key(db, "voice", *SCOPES)
    with serving(db, "--stateless") as a, serving(db, "--stateless") as b, anyio.fail_after(60):
        balancer = RoundRobin([a, b])
        async with httpx2.AsyncClient(transport=balancer, headers={"Authorization": f"Bearer {key}"}) as http, \
                Client(streamable_http_client(a + "/mcp", http_client=http)) as session:
            first = await call(session, "create_job", customer=NEW_CALLER, job_type="hvac", summary="no heat",
                               idempotency_key="lb-1", **MONDAY_9)
            again = await call(session, "create_job", customer=NEW_CALLER, job_type="hvac", summary="no heat",
                               idempotency_key="lb-1", **MONDAY_9)  # the retry lands on the other process
            found = await call(session, "lookup_customer", phone="3125550188")
            job = await call(session, "get_job", job_id=first["job_id"])
        assert len(set(balancer.seen)) == 2, "both processes answered"
    assert again["job_id"] == first["job_id"] and found["matches"][0]["customer_id"] == first["customer_id"]
    assert job["status"] == "scheduled"


def _open_session(base: str, key: str) -> httpx2.Response:
    return post(base, key, INIT)


def test_sessions_are_capped_and_an_idle_one_is_closed(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    key = new_key(db, "voice", "customers:read")
    env = {**ENV, "FSM_MCP_SERVE_MAX_SESSIONS": "2", "FSM_MCP_SERVE_SESSION_IDLE_TIMEOUT": "1"}
    with serving(db, env=env) as base:
        opened = [_open_session(base, key) for _ in range(2)]
        assert [r.status_code for r in opened] == [200, 200]
        refused = _open_session(base, key)
        assert refused.status_code == 503 and "Too many open sessions" in refused.text
        session = opened[0].headers["mcp-session-id"]
        ping: dict[str, Any] = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        headers = {"content-type": "application/json", "accept": "application/json, text/event-stream",
                   "Authorization": f"Bearer {key}", "mcp-session-id": session, "mcp-protocol-version": "2025-06-18"}
        deadline = time.monotonic() + 15  # the idle timeout is 1 s; touching the old session would keep it alive
        while _open_session(base, key).status_code == 503:
            assert time.monotonic() < deadline, "idle sessions were never closed"
            time.sleep(0.2)
        stale = httpx2.post(base + "/mcp", content=json.dumps(ping), timeout=10, headers=headers)
        assert stale.status_code == 404
