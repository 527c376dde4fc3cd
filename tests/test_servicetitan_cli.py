"""`fsm-mcp check` and `fsm-mcp sync` as an administrator runs them, over real HTTP to the fake
ServiceTitan on a loopback port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.servicetitan import CAMPAIGN, TENANT, connector_env

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def fake_url() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.servicetitan", "--port", str(port), "--customers", "25"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("the fake ServiceTitan did not start")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


def run(url: str, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    settings = {**connector_env(url), "FSM_MCP_DB": str(tmp_path / "st.db")}
    return subprocess.run([sys.executable, "-m", "fsm_mcp", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **settings, **env}, cwd=tmp_path)


def test_check_prints_what_the_connector_resolved_and_writes_nothing(fake_url: str, tmp_path: Path) -> None:
    result = run(fake_url, tmp_path, "check")
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert resolved["tenant"] == TENANT and resolved["campaign"] == CAMPAIGN
    assert resolved["technicians"] == {"Dana Reyes": ["hvac", "plumbing"]}
    assert "Furnace repair" in resolved["job_types"] and resolved["business_units"]["10"] == "HVAC Service"


def test_check_with_a_wrong_secret_exits_1_naming_the_problem_not_the_secret(fake_url: str, tmp_path: Path) -> None:
    result = run(fake_url, tmp_path, "check", FSM_MCP_SERVICETITAN_CLIENT_SECRET="not-the-secret-9f2")
    assert result.returncode == 1
    assert "refused fsm-mcp's client id and secret" in result.stderr
    assert "not-the-secret-9f2" not in result.stderr + result.stdout


def test_check_with_an_unknown_business_unit_names_the_setting(fake_url: str, tmp_path: Path) -> None:
    result = run(fake_url, tmp_path, "check", FSM_MCP_SERVICETITAN_BUSINESS_UNIT_ID="99")
    assert result.returncode == 1 and "FSM_MCP_SERVICETITAN_BUSINESS_UNIT_ID" in result.stderr


def test_sync_fills_the_directory_then_lookups_find_its_customers(fake_url: str, tmp_path: Path) -> None:
    result = run(fake_url, tmp_path, "sync")
    assert result.returncode == 0, result.stderr
    assert "25 customers" in result.stderr and result.stdout == ""
    again = run(fake_url, tmp_path, "sync")  # only changes now: the cursor re-reads its own second
    assert again.returncode == 0, again.stderr
    duplicates = run(fake_url, tmp_path, "duplicates", "--json")
    assert json.loads(duplicates.stdout) == {"groups": []}
    assert "among 25 customers" in duplicates.stderr


def test_missing_settings_stop_the_server_with_one_message_naming_them(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "fsm_mcp", "serve"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "FSM_MCP_BACKEND": "servicetitan", "FSM_MCP_DB": str(tmp_path / "x.db")})
    assert result.returncode == 2
    assert "FSM_MCP_SERVICETITAN_CLIENT_SECRET" in result.stderr and "Traceback" not in result.stderr
