"""Every tool's schemas, held to the rules the main tool-calling APIs publish for strict function calling
(OpenAI's strict mode and its Agents SDK's converter, Gemini's function declarations) and to the MCP
Inspector's portability check, so that no client silently falls back to a looser mode or drops a tool.

Rules deliberately not met, and why:
- "Every property is listed in `required`" (OpenAI strict, literally): an MCP client that is not strict would then
  have to send every argument. Optional arguments are nullable or carry a published default instead, which is what
  a strict converter (the Agents SDK's `ensure_strict_json_schema`) needs to list them as required itself: the
  model then sends null or the default.
- "No `default`, no length or range keywords (`maxLength`, `minimum`...)" (older strict modes): kept, because they
  tell the model the limits the server enforces anyway; converters that do not support them drop them.
"""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from mcp import Client

pytestmark = pytest.mark.anyio
COMPOSITION = ("anyOf", "oneOf", "allOf")
# The Inspector's "untyped-schema" rule: a schema with none of these accepts any value at all.
CONSTRAINING = frozenset({
    "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength",
    "minLength", "pattern", "format", "maxItems", "minItems", "uniqueItems", "required", "allOf", "anyOf", "oneOf",
    "not", "items", "prefixItems", "properties", "additionalProperties", "$ref"})


def nodes(schema: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every subschema with its path (`properties.address.anyOf[1].properties.street`)."""
    if not isinstance(schema, dict):
        return
    yield path, schema
    for key in ("properties", "$defs", "patternProperties"):
        for name, sub in schema.get(key, {}).items():
            yield from nodes(sub, f"{path}.{key}.{name}".lstrip("."))
    for key in (*COMPOSITION, "prefixItems"):
        for i, sub in enumerate(schema.get(key, [])):
            yield from nodes(sub, f"{path}.{key}[{i}]".lstrip("."))
    for key in ("items", "not", "additionalProperties"):
        yield from nodes(schema.get(key), f"{path}.{key}".lstrip("."))


def nullable(schema: dict[str, Any]) -> bool:
    return any(branch.get("type") == "null" for branch in schema.get("anyOf", []))


def broken_input_rules(schema: dict[str, Any]) -> list[str]:
    found = []
    if schema.get("type") != "object" or any(k in schema for k in (*COMPOSITION, "not", "enum")):
        found.append("root: must be a plain object, with no anyOf/oneOf/allOf at the top")
    for path, node in nodes(schema):
        where = path or "root"
        if "$ref" in node or "$defs" in node:
            found.append(f"{where}: $ref/$defs (inline them)")
        if isinstance(node.get("type"), list):
            found.append(f"{where}: type array {node['type']} (use anyOf)")
        if "oneOf" in node or "allOf" in node:
            found.append(f"{where}: oneOf/allOf (strict modes take anyOf only)")
        if (node.get("type") == "object" or "properties" in node) and node.get("additionalProperties") is not False:
            found.append(f"{where}: an object open to unknown keys (additionalProperties: false)")
        required = set(node.get("required", []))
        for name, prop in node.get("properties", {}).items():
            if name not in required and not nullable(prop) and "default" not in prop:
                found.append(f"{where}.{name}: optional, yet neither nullable nor defaulted")
    return found


def broken_portability_rules(schema: dict[str, Any]) -> list[str]:
    """The MCP Inspector's `--strict` check (type-union, untyped-schema, remote-ref), for output schemas too."""
    found = []
    for path, node in nodes(schema):
        where = path or "root"
        if isinstance(node.get("type"), list):
            found.append(f"{where}: type array {node['type']}")
        if not CONSTRAINING & node.keys() and not path.endswith(".not"):
            found.append(f"{where}: constrains nothing")
        if isinstance(node.get("$ref"), str) and not node["$ref"].startswith("#"):
            found.append(f"{where}: remote $ref")
    return found


async def test_every_input_schema_meets_the_strict_tool_calling_rules(client: Client) -> None:
    tools = (await client.list_tools()).tools
    broken = {t.name: found for t in tools if (found := broken_input_rules(t.input_schema))}
    assert broken == {}
    assert len(tools) >= 13


async def test_every_schema_is_portable_as_the_inspector_checks_it(client: Client) -> None:
    broken = {}
    for tool in (await client.list_tools()).tools:
        for kind, schema in (("input", tool.input_schema), ("output", tool.output_schema)):
            if schema is not None and (found := broken_portability_rules(schema)):
                broken[f"{tool.name} {kind}"] = found
    assert broken == {}


def test_the_rules_catch_what_they_are_about() -> None:
    """The checks above can fail: each rule finds its own kind of schema."""
    closed = {"type": "object", "additionalProperties": False}
    refs = {**closed, "properties": {"a": {"$ref": "#/$defs/A"}}, "required": ["a"], "$defs": {"A": {"type": "string"}}}
    arrays = {**closed, "properties": {"a": {"type": ["string", "null"], "default": None}}}
    top_union = {"anyOf": [closed, closed]}
    open_inside = {**closed, "properties": {"a": {"type": "object", "properties": {}}}, "required": ["a"]}
    optional = {**closed, "properties": {"a": {"type": "string"}}}
    anything = {**closed, "properties": {"a": {"description": "whatever"}}, "required": ["a"]}
    assert [len(broken_input_rules(s)) > 0 for s in (refs, arrays, top_union, open_inside, optional)] == [True] * 5
    assert broken_input_rules({**closed, "properties": {"a": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}) == []
    assert [len(broken_portability_rules(s)) > 0 for s in (arrays, anything)] == [True, True]
    assert json.dumps(broken_portability_rules(refs)) == "[]"  # a local $ref is portable; the strict rules forbid it
