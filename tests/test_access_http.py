"""The HTTP server as a network peer sees it: a bearer credential or 401, keys revoked at once,
Host and Origin checked, request size bounded, and no anonymous service beyond this machine."""

import json
from pathlib import Path

import anyio
import httpx2
import pytest
from click.testing import CliRunner

from fsm_mcp.cli import main
from tests import stores
from tests.conftest import MONDAY_9, NEW_CALLER, call
from tests.http_rig import ENV, client, fsm, new_key, serving

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}}}
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def post(base: str, key: str | None, body: object = INIT, **headers: str) -> httpx2.Response:
    auth = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx2.post(base + "/mcp", content=json.dumps(body), headers={**MCP_HEADERS, **auth, **headers}, timeout=10)


def test_keys_are_printed_once_on_stdout_and_listed_without_the_secret(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    made = fsm("keys", "create", "voice-bot", "--scope", "customers:read", "--scope", "jobs:write", "--db", str(db))
    assert made.returncode == 0 and made.stdout.count("\n") == 1 and made.stdout.startswith("fsmk_")
    key = made.stdout.strip()
    listed = fsm("keys", "list", "--db", str(db))
    assert "voice-bot\tdefault\tcustomers:read jobs:write" in listed.stdout and key not in listed.stdout
    stored = stores.connect(db).execute("SELECT * FROM api_keys").fetchall()
    assert key not in repr(stored), "the key is stored only as its digest"
    again = fsm("keys", "create", "voice-bot", "--scope", "customers:read", "--db", str(db))
    assert again.returncode == 2 and "exists already" in again.stderr and again.stdout == ""
    wrong = fsm("keys", "create", "other", "--scope", "everything", "--db", str(db))
    assert wrong.returncode == 2 and "unknown scope(s) everything" in wrong.stderr


def test_missing_unknown_and_revoked_credentials_get_401_and_a_revoked_key_stops_at_once(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    key = new_key(db, "dispatcher", "customers:read")
    with serving(db) as base:
        for credential in (None, "fsmk_not-a-key", "eyJhbGciOiJub25lIn0.e30.", key[:-2] + "xx"):
            answer = post(base, credential)
            assert answer.status_code == 401, credential
            assert answer.headers["www-authenticate"].startswith("Bearer ")
        assert post(base, key).status_code == 200
        assert fsm("keys", "revoke", "dispatcher", "--db", str(db)).returncode == 0
        assert post(base, key).status_code == 401  # no restart
        assert fsm("keys", "revoke", "dispatcher", "--db", str(db)).returncode == 1
        # the revoked key's name may be given to a new key; the old key stays revoked
        renewed = new_key(db, "dispatcher", "customers:read")
        assert post(base, renewed).status_code == 200 and post(base, key).status_code == 401


def test_host_and_origin_are_checked_and_an_oversized_request_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    key = new_key(db, "probe", "customers:read")
    env = {**ENV, "FSM_MCP_SERVE_MAX_REQUEST_BYTES": "100000", "FSM_MCP_SERVE_ALLOWED_HOSTS": "mcp.example.com"}
    with serving(db, env=env) as base:
        assert post(base, key, host="evil.example.net").status_code == 421
        assert post(base, key, origin="http://evil.example.net").status_code == 403
        assert post(base, key, host="mcp.example.com").status_code == 200
        huge = {**INIT, "params": {**INIT["params"], "padding": "x" * 200_000}}  # type: ignore[dict-item]
        assert post(base, key, huge).status_code == 413
        assert post(base, key).status_code == 200  # and it goes on serving


@pytest.mark.anyio
async def test_over_http_a_key_sees_only_its_tools_and_the_audit_names_the_key(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    booker = new_key(db, "voice-bot", "customers:read", "jobs:write")
    with serving(db) as base, anyio.fail_after(60):
        async with client(base, booker) as session:
            names = {t.name for t in (await session.list_tools()).tools}
            assert "create_job" in names and "create_invoice" not in names and "merge_customers" not in names
            await call(session, "create_job", customer=NEW_CALLER, job_type="hvac", summary="no heat",
                       idempotency_key="h-1", **MONDAY_9)
    actors = stores.connect(db).execute("SELECT DISTINCT actor, tenant_id FROM audit_log").fetchall()
    assert actors == [("key:voice-bot", "default")]


def test_the_server_refuses_anonymous_or_unnamed_service_beyond_this_machine(tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    for host in ("0.0.0.0", "192.0.2.10", "example.com", "::"):
        anonymous = CliRunner().invoke(main, ["serve", "--transport", "http", "--host", host, "--no-auth", "--db", db])
        assert anonymous.exit_code == 2 and "anonymous calls from the network" in anonymous.output
        unnamed = CliRunner().invoke(main, ["serve", "--transport", "http", "--host", host, "--db", db])
        assert unnamed.exit_code == 2 and "FSM_MCP_SERVE_ALLOWED_HOSTS" in unnamed.output
    assert not (tmp_path / "h.db").exists()
