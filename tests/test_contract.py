"""What the model sees: every tool's schema is snapshotted, tools.md is generated from it.

After an intended change: FSM_MCP_UPDATE_SNAPSHOTS=1 pytest tests/test_contract.py, then
`fsm-mcp tools-doc`, and review both diffs.
"""

import json
import os
from pathlib import Path

import pytest
from mcp import Client

from fsm_mcp.server import build_server
from fsm_mcp.settings import Settings
from fsm_mcp.tooldoc import render

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT / "tests" / "snapshots" / "tools.json"


async def test_every_tool_schema_matches_its_reviewed_snapshot(client: Client) -> None:
    tools = (await client.list_tools()).tools
    live = {t.name: t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in sorted(tools, key=lambda t: t.name)}
    if os.environ.get("FSM_MCP_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(live, indent=2, sort_keys=True) + "\n")
    assert SNAPSHOT.exists(), "no schema snapshot; run with FSM_MCP_UPDATE_SNAPSHOTS=1 and review it"
    assert live == json.loads(SNAPSHOT.read_text()), "tool schemas changed; update the snapshot and tools.md"


async def test_every_tool_declares_what_it_does(client: Client) -> None:
    for tool in (await client.list_tools()).tools:
        hints = tool.annotations
        assert hints is not None and hints.read_only_hint is not None and hints.destructive_hint is not None, tool.name
        assert tool.output_schema is not None, tool.name
        assert tool.description and len(tool.description) > 80, tool.name


async def test_read_only_tools_write_nothing(client: Client, settings: Settings) -> None:
    import sqlite3

    for tool in (await client.list_tools()).tools:
        if tool.annotations and tool.annotations.read_only_hint:
            await client.call_tool(tool.name, {})
    conn = sqlite3.connect(settings.db_path)
    assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 0
    conn.close()


async def test_tools_md_is_generated_from_the_live_schemas(tmp_path: Path) -> None:
    expected = await render(build_server(Settings(db_path=tmp_path / "x.db")))
    assert (ROOT / "tools.md").read_text() == expected, "tools.md is stale; run `fsm-mcp tools-doc`"
