"""Every request the books' sink sends, checked against the published specs in ../shared/specs (skipped
without them): the operation exists, each query parameter and each header of ours is declared, required
ones are given, values and bodies match their schemas. QuickBooks' community OpenAPI leaves out two things
Intuit documents (../shared/specs/README.md): `requestid` on writes and change data capture (`/cdc`); those
are checked against the documented rules instead. The token endpoints are OAuth 2's (RFC 6749), in neither
spec."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from fsm_mcp.accounting import feed, open_sink
from fsm_mcp.store import Store
from tests.accounting_rig import TENANT, books, invoiced_job
from tests.fakes.chaos import Chaos

yaml = pytest.importorskip("yaml", reason="PyYAML reads the published specs; pip install -e '.[test]'")
validators = pytest.importorskip("openapi_schema_validator", reason="validates OpenAPI schemas; pip install -e '.[test]'")

SPECS = Path(__file__).resolve().parents[2] / "shared" / "specs"
pytestmark = [pytest.mark.anyio,
              pytest.mark.skipif(not SPECS.is_dir(), reason=f"the vendors' published specs are not at {SPECS}")]
FILES = {"quickbooks": ("quickbooks/quickbooks-accounting.yml", "/v3/company/[^/]+"),
         "xero": ("xero/xero_accounting.yaml", "/api.xro/2.0")}
OURS = {"idempotency-key", "if-modified-since", "xero-tenant-id"}  # headers the sink sets itself, beyond HTTP's own
CDC = {"entities", "changedSince", "minorversion"}  # Intuit's documented CDC parameters


@dataclass
class Sent:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: Any


class Recorder(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent: list[Sent] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raw = request.content
        body = json.loads(raw) if raw and request.headers.get("content-type", "").startswith("application/json") else None
        self.sent.append(Sent(request.method, request.url.path, list(request.url.params.multi_items()),
                              {k.lower(): v for k, v in request.headers.items()}, body))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Spec:
    def __init__(self, provider: str) -> None:
        file, self.prefix = FILES[provider]
        self.doc = yaml.safe_load((SPECS / file).read_text())
        self.validator = validators.OAS31Validator if self.doc["openapi"].startswith("3.1") else validators.OAS30Validator
        self.operations = []
        for template, ops in self.doc["paths"].items():
            pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
            shared = ops.get("parameters", [])
            for method, op in ops.items():
                if method in ("get", "post", "put", "patch", "delete"):
                    params = [self.resolve(p) for p in shared + op.get("parameters", [])]
                    self.operations.append((method.upper(), pattern, op, params))
        self.operations.sort(key=lambda o: o[1].pattern.count("[^/]+"))

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            found: Any = self.doc
            for part in node["$ref"].removeprefix("#/").split("/"):
                found = found[part]
            node = found
        return node

    def find(self, method: str, path: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        local = re.sub("^" + self.prefix, "", path)
        found = [(op, params) for m, p, op, params in self.operations if m == method and p.match(local)]
        return found[0] if found else None

    def check(self, schema: dict[str, Any], value: Any, what: str) -> None:
        validator = self.validator({**schema, "components": self.doc.get("components", {})})
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        assert not errors, f"{what}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def typed(value: str, schema: dict[str, Any]) -> Any:
    """A query string's value as its schema's type (the wire carries text)."""
    kind = schema.get("type")
    if kind == "array":  # form style: comma-separated
        return [typed(v, schema.get("items", {})) for v in value.split(",")]
    if kind == "integer" and re.fullmatch(r"-?\d+", value):
        return int(value)
    if kind == "number" and re.fullmatch(r"-?\d+(\.\d+)?", value):
        return float(value)
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    return value


def problems(spec: Spec, provider: str, x: Sent) -> list[str]:
    found = spec.find(x.method, x.path)
    query = dict(x.query)
    if found is None:
        if provider == "quickbooks" and x.method == "GET" and x.path.endswith("/cdc"):
            return [f"cdc: {n} not documented" for n in set(query) - CDC] + \
                [f"cdc: {n} missing" for n in ("entities", "changedSince") if n not in query]
        return [f"{x.method} {x.path} is not in the published API"]
    op, params = found
    wrong = []
    declared = {(p["name"].lower(), p["in"]): p for p in params}
    for name, value in x.query:
        p = declared.get((name.lower(), "query"))
        if p is None:
            if provider == "quickbooks" and name == "requestid" and x.method == "POST" and 1 <= len(value) <= 50:
                continue  # Intuit's documented idempotency (at most 50 characters)
            wrong.append(f"query {name} is not declared")
        elif "schema" in p:
            errors = list(spec.validator(p["schema"]).iter_errors(typed(value, p["schema"])))
            wrong += [f"query {name}={value!r}: {e.message}" for e in errors]
    for name in OURS & set(x.headers):
        if provider == "xero" and (name, "header") not in declared:
            wrong.append(f"header {name} is not declared")
    if provider == "xero" and len(x.headers.get("idempotency-key", "")) > 128:
        wrong.append("Idempotency-Key longer than 128")
    for (name, where), p in declared.items():
        if p.get("required") and where == "query" and name not in {n.lower() for n, _ in x.query}:
            wrong.append(f"required query {name} missing")
        if p.get("required") and where == "header" and name not in x.headers:
            wrong.append(f"required header {name} missing")
    if x.body is not None:
        content = (op.get("requestBody") or {}).get("content", {}).get("application/json")
        if content is None:
            wrong.append("a body the operation does not take")
        else:
            try:
                spec.check(content["schema"], x.body, f"{x.method} {x.path} body")
            except AssertionError as exc:
                wrong.append(str(exc))
    return wrong


@pytest.mark.parametrize("provider", ["quickbooks", "xero"])
async def test_every_request_the_sink_sends_follows_the_published_spec(provider: str, db: Store) -> None:
    spec = Spec(provider)
    recorder = Recorder()
    chaos = Chaos(p_lost=0.5, seed=7)  # lost answers: the read-backs are sent too
    with books(provider, db, chaos) as rig:
        add = rig.fake.add_customer if provider == "quickbooks" else rig.fake.add_contact
        add("William Jenkins", phone="(217) 555-0142")
        await rig.connect()
        settings = rig.settings.model_copy(update={"email_invoices": True})
        sink = open_sink(db, TENANT, settings, transport=recorder)
        feed.announce(sink)
        ids = [invoiced_job(db, "Bill Jenkins", "(217) 555-0142", email="bill@example.com", discount="10"),
               invoiced_job(db, "Ann O'Lee", "(217) 555-0199", email="ann@example.com", tax_rate="0")]
        posted = [await sink.post_invoice(i) for i in ids]
        chaos.p_lost = 0.0
        for one in posted:
            rig.pay(one.their_id, "25.00")
        async with rig.webhooks(sink) as hooks:
            delivered = await rig.deliver(hooks, repeat=2)
        assert delivered and all(d.status == 200 for d in delivered)
        await sink.catch_up()
        await sink.books.probe()
        await sink.aclose()
    api = [x for x in recorder.sent if "token" not in x.path]
    assert {x.method for x in api} >= {"GET", "POST" if provider == "quickbooks" else "PUT"}
    assert any(x.headers.get("idempotency-key") or dict(x.query).get("requestid") for x in api)
    wrong = {f"{x.method} {x.path}": p for x in api if (p := problems(spec, provider, x))}
    assert not wrong, wrong
    for token in (x for x in recorder.sent if "token" in x.path):  # OAuth 2's refresh grant (RFC 6749 section 6)
        assert token.method == "POST" and token.headers["authorization"].startswith("Basic ")


def test_a_request_outside_the_spec_is_found() -> None:
    spec = Spec("xero")
    tenant = {"xero-tenant-id": "t"}
    assert problems(spec, "xero", Sent("GET", "/api.xro/2.0/Invoices", [("bogus", "1")], tenant, None)) == \
        ["query bogus is not declared"]
    assert problems(spec, "xero", Sent("GET", "/api.xro/2.0/Invoices", [], {}, None)) == \
        ["required header xero-tenant-id missing"]
    assert problems(spec, "xero", Sent("DELETE", "/api.xro/2.0/Contacts/1", [], {}, None))
    made = Sent("PUT", "/api.xro/2.0/Invoices", [], {"idempotency-key": "k", **tenant}, {"Invoices": [{"Type": 7}]})
    assert any("body" in p for p in problems(spec, "xero", made))
    intuit = Spec("quickbooks")
    base = "/v3/company/1"
    assert problems(intuit, "quickbooks", Sent("POST", f"{base}/invoice", [("requestid", "k" * 51)], {}, {}))
    assert problems(intuit, "quickbooks", Sent("GET", f"{base}/query", [("query", "x"), ("minorversion", "99")], {},
                                               None))
    assert problems(intuit, "quickbooks", Sent("POST", f"{base}/invoice", [], {}, {"Line": "none"}))
    assert problems(intuit, "quickbooks", Sent("GET", f"{base}/cdc", [("entities", "Invoice")], {}, None)) == \
        ["cdc: changedSince missing"]
