"""Every request the FieldPulse connector sends, checked against FieldPulse's published OpenAPI
document in ../shared/specs (skipped without it): the operation exists, each query parameter
is declared, each body field is one the operation's published example names, and each answer's
status is one the operation declares (429, and API Gateway's 5xx, are documented apart from
the operations). The spec publishes no response schema, so answers cannot be checked further.
Each request also keeps to what the parameters' descriptions say in prose (allowed values,
the most a page holds, pages from 1, UNIX timestamps), which the fake enforces too."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.fakes.fieldpulse import API_KEY, FakeFieldPulse
from tests.st_rig import NEW_CALLER, WINDOW, Rig, call
from tests.when import MONDAY, TUESDAY, at, day

SPEC = Path(__file__).resolve().parents[2] / "shared" / "specs" / "fieldpulse" / "fieldpulse-openapi.json"
pytestmark = [pytest.mark.anyio, pytest.mark.skipif(not SPEC.is_file(), reason=f"FieldPulse's published spec is not at {SPEC}")]


class Spec:
    def __init__(self) -> None:
        doc = json.loads(SPEC.read_text())
        self.parameters = doc.get("components", {}).get("parameters", {})
        self.operations: list[tuple[str, re.Pattern[str], dict[str, Any]]] = []
        for template, ops in doc["paths"].items():
            pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
            for method, op in ops.items():
                if method in ("get", "post", "put", "delete"):
                    self.operations.append((method.upper(), pattern, op))
        self.operations.sort(key=lambda o: o[1].pattern.count("[^/]+"))  # /jobs/status-workflows before /jobs/{jobId}

    def find(self, method: str, path: str) -> dict[str, Any]:
        found = [op for m, p, op in self.operations if m == method and p.match(path)]
        assert found, f"{method} {path} is not in FieldPulse's published API"
        return found[0]

    def query(self, op: dict[str, Any]) -> set[str]:
        params = [self.parameters[p["$ref"].rsplit("/", 1)[-1]] if "$ref" in p else p for p in op.get("parameters", [])]
        return {p["name"] for p in params if p.get("in") == "query"}


def example_fields(op: dict[str, Any]) -> set[str] | None:
    schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    example = schema.get("example")
    return set(example) if example else None  # {} publishes no fields: nothing to hold a body to


def test_the_fake_serves_only_operations_from_the_published_spec() -> None:
    spec = Spec()
    for route in FakeFieldPulse().app.routes:
        for method in getattr(route, "methods", set()) - {"HEAD"}:
            spec.find(method, re.sub(r"\{[^}]+\}", "1", getattr(route, "path", "")))


async def test_every_request_of_a_whole_job_follows_the_published_spec(fp: Rig) -> None:
    fp.fake.door.log.clear()
    await fp.sync()
    async with fp.client() as client:
        await call(client, "lookup_customer", phone="2175550143")
        await call(client, "find_available_slots", job_type="Furnace repair", date_from=MONDAY.isoformat(), date_to=MONDAY.isoformat())
        booked = await call(client, "create_job", job_type="Furnace repair", summary="No heat", idempotency_key="k1",
                            customer=NEW_CALLER, address="5 Elm St, Springfield, IL 62704", **WINDOW)
        await call(client, "create_job", job_type="Drain cleaning", summary="Slow drain", idempotency_key="k2",
                   customer_id=booked["customer_id"], caller_phone="217 555 0100", address="9 Ash St, Springfield, IL 62704",
                   **WINDOW)
        job = booked["job_id"]
        await call(client, "dispatch_technician", job_id=job, technician_id=fp.tech, idempotency_key="d1")
        for status in ("en_route", "arrived", "working", "completed"):
            await call(client, "update_job_status", job_id=job, status=status, note="ok")
        await call(client, "create_invoice", job_id=job, idempotency_key="i1", tax_rate="0.05", discount="10",
                   line_items=[{"description": "Igniter", "kind": "material", "quantity": "2", "unit_price": "44.75"}])
        await call(client, "get_customer", customer_id=booked["customer_id"])
        await call(client, "list_jobs", date_from=at(day(-1), 0), date_to=at(TUESDAY, 0))
        await call(client, "list_technicians")
    spec = Spec()
    seen = set()
    for x in fp.fake.door.log:
        op = spec.find(x.method, x.path)
        seen.add((x.method, op.get("operationId", x.path)))
        assert set(x.query) <= spec.query(op), f"{x.method} {x.path}: undeclared parameters {set(x.query) - spec.query(op)}"
        if x.body is not None and (fields := example_fields(op)) is not None:
            assert set(x.body) <= fields, f"{x.method} {x.path}: fields the spec does not name {set(x.body) - fields}"
            for row in x.body.get("locations", []):
                assert set(row) <= set(op["requestBody"]["content"]["application/json"]["schema"]["example"]["locations"][0])
        assert x.status == 429 or x.status >= 500 or str(x.status) in op["responses"], f"{x.method} {x.path}: {x.status}"
    assert len(seen) >= 12, seen  # the exchange covered the connector's operations, not a handful


# ----- what the parameters' descriptions require, beyond their names -----

ALLOWED = re.compile(r"(?:Allowed values|Values): ([\w, ]+?)\.?$")
MOST = re.compile(r"maximum (\d+) items allowed")


def prose_rules(spec: Spec, op: dict[str, Any]) -> dict[str, Any]:
    """What each query parameter's description says its value must be, read from the spec: a set of allowed
    values, a range, or "epoch" (a UNIX timestamp)."""
    rules: dict[str, Any] = {}
    params = [spec.parameters[p["$ref"].rsplit("/", 1)[-1]] if "$ref" in p else p for p in op.get("parameters", [])]
    for p in params:
        text = (p.get("description") or "").strip()
        if (m := ALLOWED.search(text)) and "any attribute" not in text:
            rules[p["name"]] = {v.strip() for v in m.group(1).split(",")}
        elif text.startswith("true or false") or "Possible values are true or false" in text:
            rules[p["name"]] = {"true", "false"}
        elif m := MOST.search(text):
            rules[p["name"]] = range(1, int(m.group(1)) + 1)
        elif "Starts from 1" in text:
            rules[p["name"]] = range(1, 1 << 31)
        elif "UNIX timestamp" in text:
            rules[p["name"]] = "epoch"
    return rules


def broken(spec: Spec, op: dict[str, Any], query: dict[str, str]) -> list[str]:
    found = []
    for name, rule in prose_rules(spec, op).items():
        if (value := query.get(name)) is None:
            continue
        if rule == "epoch":
            ok = value.isdigit()
        elif isinstance(rule, range):
            ok = value.isdigit() and int(value) in rule
        else:
            ok = value in rule
        if not ok:
            found.append(f"{name}={value}")
    return found


def test_the_specs_prose_is_read_where_the_connector_meets_it() -> None:
    spec = Spec()
    jobs = spec.find("GET", "/jobs")
    rules = prose_rules(spec, jobs)
    assert rules["sort_by"] == {"created_at", "updated_at"} and rules["sort_dir"] == {"asc", "desc"}
    assert rules["limit"] == range(1, 101) and rules["created_from"] == "epoch"
    assert prose_rules(spec, spec.find("GET", "/locations"))["object_type"] == {"customer", "job"}
    assert broken(spec, jobs, {"limit": "101", "created_from": "2030-01-01", "sort_dir": "up", "page": "2"}) \
        == ["limit=101", "sort_dir=up", "created_from=2030-01-01"]


async def test_a_first_sync_and_a_whole_job_keep_to_what_the_parameters_descriptions_require(
        fp: Rig, tmp_path: Path) -> None:
    fp.fake.door.log.clear()
    fresh = dataclasses.replace(fp, settings=fp.settings.model_copy(update={"db_path": tmp_path / "fresh.db"}))
    assert (await fresh.sync())["customers"] >= 1
    async with fp.client() as client:
        booked = await call(client, "create_job", job_type="Furnace repair", summary="No heat", idempotency_key="k1",
                            customer=NEW_CALLER, address="5 Elm St, Springfield, IL 62704", **WINDOW)
        await call(client, "dispatch_technician", job_id=booked["job_id"], technician_id=fp.tech, idempotency_key="d1")
        await call(client, "get_customer", customer_id=booked["customer_id"])
        await call(client, "list_jobs", date_from=at(day(-1), 0), date_to=at(TUESDAY, 0), status=["dispatched"])
        await call(client, "list_technicians")
    spec = Spec()
    for x in fp.fake.door.log:
        op = spec.find(x.method, x.path)
        assert not broken(spec, op, x.query), f"{x.method} {x.path} {x.query}: {broken(spec, op, x.query)}"
        assert x.status != 400, f"{x.method} {x.path} was refused: {x.answer}"


async def test_the_fake_refuses_what_the_parameters_descriptions_forbid() -> None:
    fake = FakeFieldPulse()
    spec = Spec()
    refused = [
        ("/customers", {"limit": "101"}), ("/customers", {"page": "0"}), ("/customers", {"sort_by": "name"}),
        ("/customers", {"calculate_count": "yes"}), ("/jobs", {"sort_dir": "up"}), ("/jobs", {"sort_by": "status"}),
        ("/jobs", {"created_from": "2030-01-01T00:00:00Z"}), ("/locations", {"object_type": "invoice"}),
        ("/invoices", {"sort_dir": "sideways"}),
    ]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(fake.app), base_url="http://fp.test",
                                 headers={"x-api-key": API_KEY}) as http:
        for path, query in refused:
            assert broken(spec, spec.find("GET", path), query), f"{path} {query} breaks no rule the spec's prose states"
            answer = await http.get(path, params=query)
            assert answer.status_code == 400 and answer.json()["error"] is True, (path, query, answer.text)
        assert (await http.get("/jobs", params={"created_from": "1700000000", "sort_by": "created_at"})).status_code == 200
