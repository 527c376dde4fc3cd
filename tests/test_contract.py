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
from tests import stores

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

    for tool in (await client.list_tools()).tools:
        if tool.annotations and tool.annotations.read_only_hint:
            await client.call_tool(tool.name, {})
    conn = stores.connect(settings.db_path)
    assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 0
    conn.close()


async def test_tools_md_is_generated_from_the_live_schemas(tmp_path: Path) -> None:
    expected = await render(build_server(Settings(db_path=tmp_path / "x.db")))
    assert (ROOT / "tools.md").read_text() == expected, "tools.md is stale; run `fsm-mcp tools-doc`"


def test_plain_output_schemas_accept_and_reject_what_pydantics_form_does() -> None:
    import copy

    from jsonschema import Draft202012Validator
    from pydantic import TypeAdapter

    from fsm_mcp.results import CustomerProfile
    from fsm_mcp.tools._schema import plain_schema

    derived = TypeAdapter(CustomerProfile).json_schema()
    plain = plain_schema(derived)
    assert "$defs" not in json.dumps(plain) and "anyOf" in json.dumps(derived)
    good = {
        "customer": {"customer_id": "cus_1", "name": "William Jenkins", "notes": None,
                     "phones": [{"number": "+12175550143", "extension": None}],
                     "locations": [{"location_id": "loc_1", "address": {"street": "123 Oak St", "unit": None},
                                    "equipment": [{"kind": "furnace", "installed": "2014"}]}]},
        "recent_jobs": [], "open_balance": "12.50",
    }
    variants = [good]
    for path, value in [(("customer", "notes"), 7), (("customer", "phones"), [{"extension": "12"}]),
                        (("customer", "locations"), [{"location_id": "loc_1", "address": {"street": None}}]),
                        (("recent_jobs",), [{"job_id": "j"}]), (("open_balance",), None)]:
        bad = copy.deepcopy(good)
        bad[path[0]] = value if len(path) == 1 else {**bad[path[0]], path[1]: value}
        variants.append(bad)
    verdicts = [(Draft202012Validator(derived).is_valid(v), Draft202012Validator(plain).is_valid(v)) for v in variants]
    assert verdicts == [(True, True)] + [(False, False)] * 5


def test_plain_output_schemas_keep_a_field_named_title() -> None:
    from pydantic import BaseModel, TypeAdapter

    from fsm_mcp.tools._schema import plain_schema

    class Book(BaseModel):
        title: str | None = None

    plain = plain_schema(TypeAdapter(Book).json_schema())
    assert plain["properties"] == {"title": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}}
    assert plain["title"] == "Book"


def test_a_recursive_output_model_keeps_pydantics_form() -> None:
    from pydantic import BaseModel, TypeAdapter

    from fsm_mcp.tools._schema import plain_schema

    class Node(BaseModel):
        children: list["Node"] = []

    derived = TypeAdapter(Node).json_schema()
    assert plain_schema(derived) == derived


def test_an_optional_object_is_inlined_and_keeps_its_null_branch() -> None:
    from jsonschema import Draft202012Validator
    from pydantic import TypeAdapter

    from fsm_mcp.tools._schema import plain_schema
    from fsm_mcp.tools.customers import LookupResult

    derived = TypeAdapter(LookupResult).json_schema()
    plain = plain_schema(derived)
    branches = plain["properties"]["customer"]["anyOf"]
    assert {"type": "null"} in branches and "$ref" not in json.dumps(plain) and '"type": [' not in json.dumps(plain)
    card = {"customer_id": "cus_1", "name": "William Jenkins", "phones": ["+12175550143"], "emails": [],
            "locations": [{"location_id": "loc_1", "address": "123 Oak St"}], "recent_jobs": [], "open_balance": "0.00"}
    variants = [None, card, {**card, "phones": [7]}, {**card, "locations": [{"address": "x"}]}, "cus_1", []]
    verdicts = [
        (Draft202012Validator(derived).is_valid(r), Draft202012Validator(plain).is_valid(r))
        for r in ({"matches": [], "next_step": "", "customer": c} for c in variants)
    ]
    assert verdicts == [(True, True)] * 2 + [(False, False)] * 4


async def test_a_results_text_is_the_structured_answer_as_compact_json(client: Client) -> None:
    """Voice platforms hand the text content to the model: no indentation to pay for, and the same answer."""
    from tests.conftest import NEW_CALLER

    result = await client.call_tool("lookup_customer", {"phone": NEW_CALLER["phone"], "name": "Zoë Ångström"})
    text = result.content[0].text  # type: ignore[union-attr]
    assert not result.is_error and result.structured_content is not None
    assert text == json.dumps(result.structured_content, separators=(",", ":"), ensure_ascii=False)
