"""Tool schemas in the form every client and model accepts, and answers without empty fields.

Pydantic's schemas are correct but not portable: nested models sit behind `$ref`/`$defs`, which
strict tool-calling modes (the OpenAI Agents SDK's among them) cannot convert and silently give up
on. Both input and output schemas are published with every `$ref` inlined. A nullable field keeps
pydantic's `anyOf: [{type: T}, {type: null}]`: a type array (`type: [T, "null"]`) is legal JSON
Schema and checks a little faster, but a client that maps schemas onto a single-`type` dialect
(Gemini's OpenAPI subset) rejects it, and the MCP Inspector's `--strict` check warns on it. Checking
lookup_customer's result with `jsonschema` costs 0.89 ms so, 0.71 ms with type arrays, 1.20 ms in pydantic's
form (benchmarks/schema_check.py). Titles
are dropped: pydantic derives them from field names, so they carry nothing a reader lacks (the
root keeps its title: it names the result type, and tools.md shows it). For the agent's token
budget, `omit_empty` fields leave an answer when they hold nothing.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer
from pydantic import ConfigDict, Field

_DEFS = "#/$defs/"


def _empty(value: object) -> bool:
    return value is None or value == []


def omit_empty(default: Any = None, **kwargs: Any) -> Any:
    """A field left out of the answer when it holds nothing (null or []).

    A voice agent reads fewer tokens and the client's schema check visits fewer nodes.
    The field has a default, so the published schema lists it as optional and an answer
    without it still matches.
    """
    return Field(default=default, exclude_if=_empty, **kwargs)


class _Recursive(Exception):
    """A model that contains itself: its refs cannot be inlined."""


def plain_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The same constraints with every `$ref` inlined and no titles (but the root's)."""
    defs = schema.get("$defs", {})

    def walk(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [walk(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_DEFS):
            name = ref.removeprefix(_DEFS)
            if name in seen:  # a recursive model cannot be inlined; keep pydantic's form
                raise _Recursive(name)
            return walk({**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}, (*seen, name))
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("properties", "patternProperties"):  # names of fields, not keywords: keep every one
                out[key] = {name: walk(sub, seen) for name, sub in value.items()}
            elif key not in ("$defs", "title"):
                out[key] = walk(value, seen)
        return out

    try:
        plain: dict[str, Any] = walk(schema, ())
    except _Recursive:
        return schema
    if "title" in schema:
        plain = {"title": schema["title"], **plain}
    return plain


def publish_plain_schemas(mcp: MCPServer) -> None:
    """Swap each tool's derived input and output schemas for their plain forms.

    The SDK validates arguments and results against the pydantic models, not these schemas,
    so only what clients see changes. The tool list has no public accessor, hence
    `_tool_manager`; the schema snapshot test fails if that ever stops working.
    """
    for tool in mcp._tool_manager.list_tools():
        tool.parameters = plain_schema(tool.parameters)
        metadata = tool.fn_metadata
        if metadata.output_schema is not None:
            metadata.output_schema = plain_schema(metadata.output_schema)


def forbid_unknown_arguments(mcp: MCPServer) -> None:
    """Refuse an argument a tool does not take, instead of dropping it silently: an agent that sends
    `confirm: true` or `make_me_admin` learns at once that it does nothing (the SDK's argument models
    ignore extras). The published input schemas say so with `additionalProperties: false`."""
    for tool in mcp._tool_manager.list_tools():
        base = tool.fn_metadata.arg_model
        tool.fn_metadata.arg_model = type(base.__name__, (base,), {
            "model_config": ConfigDict(arbitrary_types_allowed=True, extra="forbid"), "__module__": base.__module__})
        tool.parameters["additionalProperties"] = False

