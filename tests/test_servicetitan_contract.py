"""Every request the ServiceTitan connector sends, and every answer the fake gives it, checked
against ServiceTitan's published OpenAPI documents in ../shared/specs (skipped without them):
the operation exists, each query parameter is declared, bodies match their schemas."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.servicetitan import FakeServiceTitan
from tests.st_rig import NEW_CALLER, WINDOW, Rig, call
from tests.when import MONDAY, TUESDAY, at, day

yaml = pytest.importorskip("yaml", reason="PyYAML reads the published specs; pip install -e '.[test]'")
validators = pytest.importorskip("openapi_schema_validator", reason="validates OpenAPI 3.0 schemas; pip install -e '.[test]'")

SPECS = Path(__file__).resolve().parents[2] / "shared" / "specs" / "servicetitan"
pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not SPECS.is_dir(), reason=f"ServiceTitan's published specs are not at {SPECS}"),
]


class Spec:
    def __init__(self) -> None:
        self.operations: list[tuple[str, re.Pattern[str], dict[str, Any], dict[str, Any]]] = []
        for file in sorted(SPECS.glob("*.yml")):
            doc = yaml.safe_load(file.read_text())
            for template, ops in doc["paths"].items():
                pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
                for method, op in ops.items():
                    if method in ("get", "post", "put", "patch", "delete"):
                        self.operations.append((method.upper(), pattern, op, doc["components"]))
        # A literal segment beats a parameter: customers/contacts is not customers/{id}.
        self.operations.sort(key=lambda o: o[1].pattern.count("[^/]+"))

    def find(self, method: str, path: str) -> tuple[dict[str, Any], dict[str, Any]]:
        found = [(op, comps) for m, p, op, comps in self.operations if m == method and p.match(path)]
        assert found, f"{method} {path} is not in ServiceTitan's published API"
        return found[0]


def check(schema: dict[str, Any], components: dict[str, Any], value: Any, what: str) -> None:
    validator = validators.OAS30Validator({**schema, "components": components})
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
    assert not errors, f"{what}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def test_the_fake_serves_every_operation_from_the_published_spec() -> None:
    spec = Spec()
    for route in FakeServiceTitan().app.routes:
        path = getattr(route, "path", "")
        if path == "/connect/token":
            continue
        for method in getattr(route, "methods", set()) - {"HEAD"}:
            spec.find(method, re.sub(r"\{[^}]+\}", "1", path))


async def test_every_exchange_of_a_whole_job_follows_the_published_spec(rig: Rig) -> None:
    rig.fake.door.log.clear()
    await rig.sync()
    async with rig.client() as client:
        await call(client, "lookup_customer", phone="2175550143")
        await call(client, "find_available_slots", job_type="Furnace repair", date_from=MONDAY.isoformat(), date_to=MONDAY.isoformat())
        booked = await call(client, "create_job", job_type="Furnace repair", summary="No heat", idempotency_key="k1",
                            customer=NEW_CALLER, address="5 Elm St, Springfield, IL 62704", **WINDOW)
        await call(client, "create_job", job_type="Drain cleaning", summary="Slow drain", idempotency_key="k2",
                   customer_id=booked["customer_id"], caller_phone="217 555 0100", **WINDOW)
        job = booked["job_id"]
        await call(client, "dispatch_technician", job_id=job, technician_id=rig.tech, idempotency_key="d1")
        for status in ("arrived", "working", "completed"):
            await call(client, "update_job_status", job_id=job, status=status, note="ok")
        await call(client, "create_invoice", job_id=job, idempotency_key="i1", tax_rate="0.05", discount="10",
                   line_items=[{"description": "Igniter", "kind": "material", "quantity": "2", "unit_price": "44.75"}])
        await call(client, "list_jobs", date_from=at(day(-1), 0), date_to=at(TUESDAY, 0))
        await call(client, "list_technicians")
    spec = Spec()
    seen = set()
    for x in rig.fake.door.log:
        op, components = spec.find(x.method, x.path)
        seen.add((x.method, op.get("operationId", x.path)))
        declared = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
        assert set(x.query) <= declared, f"{x.method} {x.path}: undeclared parameters {set(x.query) - declared}"
        if x.body is not None:
            body = op["requestBody"]["content"]["application/json"]["schema"]
            check(body, components, x.body, f"{x.method} {x.path} request")
        assert str(x.status) in op["responses"], f"{x.method} {x.path}: status {x.status} is not a published answer"
        content = op["responses"][str(x.status)].get("content", {}).get("application/json")
        if content and x.answer is not None and x.status < 300:
            check(content["schema"], components, x.answer, f"{x.method} {x.path} answer")
    assert len(seen) >= 15  # the exchange covered the connector's operations, not a handful
