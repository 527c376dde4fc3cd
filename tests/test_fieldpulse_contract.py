"""Every request the FieldPulse connector sends, checked against FieldPulse's published OpenAPI
document in ../shared/specs (skipped without it): the operation exists, each query parameter
is declared, each body field is one the operation's published example names, and each answer's
status is one the operation declares (429, and API Gateway's 5xx, are documented apart from
the operations). The spec publishes no response schema, so answers cannot be checked further."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fieldpulse import FakeFieldPulse
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
