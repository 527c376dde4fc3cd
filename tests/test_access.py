"""Who may call what, in process: scopes hide and refuse tools, a read-only server only reads,
and a caller's rate limits stop a looping agent with a time to retry."""

from pathlib import Path

import pytest
from mcp import Client

from fsm_mcp.access.callers import READ_ONLY, SCOPE_META, SCOPES, Caller
from fsm_mcp.server import build_server
from fsm_mcp.settings import Settings
from tests import stores
from tests.conftest import BUSINESS, MONDAY_9, NEW_CALLER, call, count, fail

READS = {"lookup_customer", "get_customer", "get_job", "list_jobs", "list_technicians", "find_available_slots",
         "find_duplicate_customers", "list_changes"}


@pytest.mark.anyio
async def test_every_tool_names_a_known_scope_and_only_reads_need_only_read_scopes(client: Client) -> None:
    for tool in (await client.list_tools()).tools:
        scope = (tool.meta or {}).get(SCOPE_META)
        assert scope in SCOPES, tool.name
        assert tool.annotations is not None
        assert (scope in READ_ONLY) == bool(tool.annotations.read_only_hint), tool.name


@pytest.mark.anyio
async def test_a_read_only_server_lists_only_reads_and_refuses_a_write_without_writing(settings: Settings) -> None:
    async with Client(build_server(settings, read_only=True)) as client:
        assert {t.name for t in (await client.list_tools()).tools} == READS
        said = await fail(client, "create_job", customer=NEW_CALLER, job_type="hvac", summary="no heat",
                          idempotency_key="ro-1", **MONDAY_9)
        assert "needs the jobs:write scope" in said and "nothing was done" in said
        assert (await call(client, "lookup_customer", phone="3125550188"))["matches"] == []
    assert count(settings, "jobs") == 0 and count(settings, "customers") == 0


@pytest.mark.anyio
async def test_a_caller_sees_and_may_call_only_the_tools_its_scopes_allow(settings: Settings) -> None:
    booker = Caller("key:booker", None, frozenset({"customers:read", "jobs:write"}))
    async with Client(build_server(settings, caller=booker)) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        assert listed == READS | {"create_job", "update_job_status", "cancel_job"}
        job = await call(client, "create_job", customer=NEW_CALLER, job_type="hvac", summary="no heat",
                         idempotency_key="b-1", **MONDAY_9)
        for tool, scope, args in (
            ("create_invoice", "billing:write", {"job_id": job["job_id"], "idempotency_key": "i-1",
                                                  "line_items": [{"description": "x", "kind": "labor", "quantity": "1",
                                                                  "unit_price": "10"}]}),
            ("dispatch_technician", "dispatch:write", {"job_id": job["job_id"], "technician_id": "tech_x"}),
            ("merge_customers", "customers:merge", {"keep_id": "a", "merge_ids": ["b"], "idempotency_key": "m-1"}),
        ):
            said = await fail(client, tool, **args)
            assert f"needs the {scope} scope" in said and "key:booker" in said
    assert count(settings, "invoices") == 0 and count(settings, "job_technicians") == 0


@pytest.mark.anyio
async def test_the_audit_log_names_the_caller_the_server_knows_not_the_client_name(settings: Settings) -> None:
    from mcp.types import Implementation

    caller = Caller("key:voice-bot", None, frozenset(SCOPES))
    async with Client(build_server(settings, caller=caller),
                      client_info=Implementation(name="the-boss", version="1")) as client:
        await call(client, "create_job", customer=NEW_CALLER, job_type="hvac", summary="no heat",
                   idempotency_key="a-1", **MONDAY_9)

    conn = stores.connect(settings.db_path)
    assert conn.execute("SELECT DISTINCT actor FROM audit_log").fetchall() == [("key:voice-bot",)]
    conn.close()


@pytest.mark.anyio
async def test_a_looping_caller_is_stopped_with_the_time_to_retry_and_nothing_written(tmp_path: Path) -> None:
    settings = Settings.load(db=tmp_path / "r.db", env={"FSM_MCP_SERVE_WRITES_PER_MINUTE": "3",
                                                      "FSM_MCP_SERVE_CALLS_PER_MINUTE": "6"})
    settings = settings.model_copy(update={"business": BUSINESS})
    agent = Caller("key:voice-bot", None, frozenset(SCOPES))  # a remote caller: the local user has no limit by default
    async with Client(build_server(settings, caller=agent)) as client:
        for n in range(3):
            await call(client, "create_job", customer=NEW_CALLER, job_type="hvac", summary="no heat",
                       idempotency_key=f"loop-{n}", allow_duplicate=True, **MONDAY_9)
        said = await fail(client, "create_job", customer=NEW_CALLER, job_type="hvac", summary="no heat",
                          idempotency_key="loop-3", allow_duplicate=True, **MONDAY_9)
        assert said.startswith("Too many writes from this caller: at most 3 a minute") and "try again in" in said
        for _ in range(3):  # reads go on until the call limit
            await call(client, "lookup_customer", phone="3125550188")
        assert (await fail(client, "lookup_customer", phone="3125550188")).startswith("Too many calls")
    assert count(settings, "jobs") == 3
