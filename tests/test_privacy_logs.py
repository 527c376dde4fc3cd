"""No personal data in logs at any level, nor in the audit log: a run of refused calls over stdio leaves names,
numbers, e-mails and streets out of the server's stderr, in process as well, and a crash's traceback keeps its frames
but not its message."""

import json
import logging
import os
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from fsm_mcp.importer import import_customers
from fsm_mcp.server import build_server
from fsm_mcp.settings import Settings
from fsm_mcp.store import open_store
from tests import stores
from tests.conftest import BUSINESS, MONDAY_9, call, fail

# Everything personal the store or the calls below hold; none of it may reach a log.
SEEDED = ("Jane", "Doe", "555-0143", "5550143", "jane.doe", "Elm St", "Birch Rd", "Oak Ave", "555-0199", "5550199",
          "5550177", "555-0177", "no heat since Sunday")
CSV = ("external_id,name,phone,email,street,city,state,postal_code,notes\n"
       "x1,Jane Doe,(217) 555-0143,jane.doe@example.com,12 Elm St,Springfield,IL,62704,\n"
       "x2,Jane Doe,(217) 555-0143,jane.doe@example.com,88 Birch Rd,Springfield,IL,62704,\n")
STRANGER = {"name": "Jane Doe", "phone": "(217) 555-0199", "address": "7 Oak Ave, Springfield, IL 62704"}
BOOKING = {"job_type": "hvac", "summary": "no heat since Sunday", **MONDAY_9}


def seed(db_path: Path | str, tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text(CSV)
    db = open_store(db_path)
    try:
        import_customers(db, BUSINESS, tmp_path / "c.csv")
    finally:
        db.close()


async def refused_calls(client: Client) -> list[str]:
    """Calls the server refuses with messages that quote personal data (what the agent must hear), and one that
    succeeds; returns what the agent was told."""
    told = [
        await fail(client, "lookup_customer", email="jane.doe@@example"),
        await fail(client, "lookup_customer", phone="555-01x", name="Jane Doe"),
        await fail(client, "create_job", customer=STRANGER, idempotency_key="p-1", **BOOKING),
        await fail(client, "create_job", customer={"name": "Jane Doe", "phone": "(217) 555-0143"},
                   idempotency_key="p-2", **BOOKING),
        await fail(client, "create_job", customer=STRANGER, caller_phone="555-0177x", idempotency_key="p-3", **BOOKING),
        await fail(client, "get_customer", customer_id="Jane Doe 555-0143"),
    ]
    found = await call(client, "lookup_customer", phone="(217) 555-0143", name="Jane Doe")
    assert found["matches"], found
    return told


def assert_no_personal_data(text: str) -> None:
    leaked = [seen for seen in SEEDED if seen.lower() in text.lower()]
    assert not leaked, f"{leaked} in the log:\n{text}"


def test_the_refusals_quote_personal_data_to_the_agent(tmp_path: Path, settings: Settings) -> None:
    """The premise of the tests below: the messages hold what the logs must not."""

    async def run() -> list[str]:
        seed(settings.db_path, tmp_path)
        async with Client(build_server(settings)) as client:
            return await refused_calls(client)

    told = anyio.run(run)
    assert "jane.doe@@example" in told[0] and "Jane Doe" in told[2] and "Elm St" in told[2]
    assert "555-0177x" in told[4]


@pytest.mark.anyio
async def test_a_run_of_refused_calls_over_stdio_leaves_no_personal_data_in_stderr(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    seed(db, tmp_path)
    env = {**os.environ, "FSM_MCP_TIMEZONE": "America/Chicago", "FSM_MCP_LOG_LEVEL": "DEBUG"}
    params = StdioServerParameters(command=sys.executable, args=["-m", "fsm_mcp", "serve", "--db", str(db)], env=env)
    with (tmp_path / "stderr.txt").open("w") as errlog:
        with anyio.fail_after(60):
            async with Client(stdio_client(params, errlog=errlog)) as client:
                await refused_calls(client)
    stderr = (tmp_path / "stderr.txt").read_text()
    assert "Tool 'lookup_customer' failed on email (message withheld" in stderr  # the refusals are logged, redacted
    assert "Tool 'create_job' failed on customer (message withheld" in stderr
    assert_no_personal_data(stderr)


@pytest.mark.anyio
async def test_in_process_no_log_record_at_debug_holds_personal_data(tmp_path: Path, settings: Settings,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    seed(settings.db_path, tmp_path)
    caplog.set_level(logging.DEBUG)
    async with Client(build_server(settings)) as client:
        await refused_calls(client)
    failed = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(failed) == 6
    assert any(m.startswith("Tool 'create_job' failed on caller_phone (message withheld") for m in failed)
    assert_no_personal_data(caplog.text + "".join(str(r.args) + (r.exc_text or "") for r in caplog.records))


@pytest.mark.anyio
async def test_a_crash_is_logged_with_its_traceback_but_not_its_message(settings: Settings,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    server = build_server(settings)

    email, whole = "jane.doe@example.com", "Jane Doe at 12 Elm St, (217) 555-0143"  # source lines are logged

    @server.tool()
    async def crash() -> str:
        try:
            raise KeyError(email)
        except KeyError as exc:
            raise ValueError(whole) from exc

    caplog.set_level(logging.DEBUG)
    async with Client(server) as client:
        said = await fail(client, "crash")
    assert said == "Error executing tool crash"
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    logged = logging.Formatter().format(record)
    assert "raise ValueError" in logged and "builtins.ValueError (message withheld" in logged
    assert "builtins.KeyError (message withheld" in logged and "test_privacy_logs.py" in logged
    assert_no_personal_data(logged)


@pytest.mark.anyio
async def test_the_audit_log_keeps_no_caller_phone_summary_e_mail_name_street_or_note(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        job = await call(client, "create_job", customer={**STRANGER, "email": "jane.doe@example.com"},
                         caller_phone="(217) 555-0177", idempotency_key="a-1", **BOOKING)
        await call(client, "update_job_status", job_id=job["job_id"], status="on_hold",
                   note="Jane Doe asked to wait; call 555-0199")
        preview = await call(client, "cancel_job", job_id=job["job_id"], reason="Jane Doe moved off Oak Ave")
        await call(client, "cancel_job", job_id=job["job_id"], reason="Jane Doe moved off Oak Ave",
                   confirmation_token=preview["confirmation_token"])
    conn = stores.connect(settings.db_path)
    try:
        rows = conn.execute("SELECT tool, arguments FROM audit_log ORDER BY id").fetchall()
    finally:
        conn.close()
    assert [tool for tool, _ in rows] == ["create_job", "update_job_status", "cancel_job"]
    assert_no_personal_data(" ".join(arguments for _, arguments in rows))
    booked = json.loads(rows[0][1])
    assert booked["caller_phone"] == "***77" and booked["customer"]["phone"] == "***99"  # enough to tell calls apart
    assert booked["job_type"] == "hvac" and booked["summary"] == "[redacted]"
