"""The real server over real transports: legacy in-process framing, stdio, streamable HTTP,
and the MCP Inspector's CLI."""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from fsm_mcp.access.callers import SCOPES
from fsm_mcp.server import build_server
from fsm_mcp.settings import Settings
from tests.conftest import MONDAY_9, NEW_CALLER, call, confirmed
from tests.http_rig import client, new_key, serving

ENV = {**os.environ, "FSM_MCP_TIMEZONE": "America/Chicago", "FSM_MCP_LOG_LEVEL": "WARNING"}


async def lifecycle(client: Client) -> dict[str, Any]:
    """Book, recognise, complete and invoice: the whole day of one job."""
    job = await call(client, "create_job", customer=NEW_CALLER, job_type="hvac", summary="no heat",
                     idempotency_key="t-1", **MONDAY_9)
    assert (await call(client, "create_job", customer=NEW_CALLER, job_type="hvac", summary="no heat",
                       idempotency_key="t-1", **MONDAY_9))["job_id"] == job["job_id"]
    found = await call(client, "lookup_customer", phone="3125550188", name="Maria Garcia")
    assert found["matches"][0]["confidence"] == "exact"
    job = await call(client, "update_job_status", job_id=job["job_id"], status="on_hold")
    return (await confirmed(client, "cancel_job", job_id=job["job_id"], reason="the caller fixed it"))["job"]


@pytest.mark.anyio
async def test_the_lifecycle_over_the_legacy_handshake(settings: Settings) -> None:
    async with Client(build_server(settings), mode="legacy") as client:
        assert (await lifecycle(client))["status"] == "canceled"


@pytest.mark.anyio
async def test_the_lifecycle_over_stdio(tmp_path: Path) -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "fsm_mcp", "serve", "--db", str(tmp_path / "s.db")], env=ENV)
    with anyio.fail_after(60):
        async with Client(params) as client:
            assert (await lifecycle(client))["status"] == "canceled"


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    db = tmp_path / "h.db"
    key = new_key(db, "tests", *SCOPES)
    with serving(db) as base:
        yield base, key


@pytest.mark.anyio
async def test_the_lifecycle_over_streamable_http(http_server: tuple[str, str]) -> None:
    base, key = http_server
    with anyio.fail_after(60):
        async with client(base, key) as session:
            assert (await lifecycle(session))["status"] == "canceled"
        async with client(base, key) as session:  # a second session shares the same store
            found = await call(session, "lookup_customer", phone="(312) 555-0188")
            assert found["matches"][0]["name"] == "Maria Garcia"


def _inspector() -> list[str] | None:
    if path := os.environ.get("FSM_MCP_INSPECTOR"):
        return [path]
    return None


# The Inspector (2.x) runs on Node >= 22.19: .ci/run installs one beside it and names its directory.
INSPECTOR_ENV = {**ENV, "PATH": os.pathsep.join(p for p in (os.environ.get("FSM_MCP_NODE22_BIN"), os.environ.get("PATH")) if p)}


@pytest.mark.skipif(_inspector() is None, reason="MCP Inspector not installed; .ci/run installs it and sets FSM_MCP_INSPECTOR")
def test_the_inspector_cli_lists_and_calls_tools_and_its_strict_check_finds_nothing(tmp_path: Path) -> None:
    inspector = _inspector()
    assert inspector is not None
    fsm = shutil.which("fsm-mcp") or "fsm-mcp"
    serve = [fsm, "serve", "--db", str(tmp_path / "i.db")]
    listed = subprocess.run([*inspector, "--cli", *serve, "--method", "tools/list", "--strict"], capture_output=True,
                            text=True, timeout=120, env=INSPECTOR_ENV)
    assert listed.returncode == 0, listed.stderr
    assert '"name": "create_job"' in listed.stdout and '"name": "lookup_customer"' in listed.stdout
    # Warnings leave the exit code alone; each is reported on stderr, with a summary line.
    assert 'Warning: tool "' not in listed.stderr and "warnings across" not in listed.stderr, listed.stderr
    called = subprocess.run(
        [*inspector, "--cli", *serve, "--method", "tools/call", "--tool-name", "lookup_customer",
         "--tool-arg", "phone=217.555.0143"], capture_output=True, text=True, timeout=120, env=INSPECTOR_ENV,
    )
    assert called.returncode == 0, called.stderr
    answer = json.loads(called.stdout)
    assert answer["isError"] is False and answer["structuredContent"]["matches"] == []
