"""Every request the Housecall Pro connector sends, checked against Housecall Pro's published
OpenAPI document in ../shared/specs (skipped without it): the operation exists, its security
admits a company's API key (the key a business has), each query parameter is declared, each
body validates against the operation's request schema, names only fields it defines and holds
what its prose requires ("One of first_name, last_name, email, mobile_number, home_number,
work_number are required" on a new customer), and each answer's status is one the operation
declares (429 and 5xx aside)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.hcp_rig import HcpRig, hcp_rig  # noqa: F401  (hcp_rig: the fixture `hcp`)
from tests.st_rig import NEW_CALLER, WINDOW, call
from tests.when import MONDAY, TUESDAY, at, day, window

SPEC = Path(__file__).resolve().parents[2] / "shared" / "specs" / "housecallpro" / "housecall-v1.yaml"
pytestmark = [pytest.mark.anyio, pytest.mark.skipif(not SPEC.is_file(), reason=f"Housecall Pro's published spec is not at {SPEC}")]
COMPANY_KEY = "Company API Key"
ONE_OF_CONTACT = ("first_name", "last_name", "email", "mobile_number", "home_number", "work_number")


class Spec:
    def __init__(self) -> None:
        self.doc = yaml.safe_load(SPEC.read_text())
        self.operations: list[tuple[str, re.Pattern[str], str, dict[str, Any], list[Any]]] = []
        for template, ops in self.doc["paths"].items():
            pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
            for method, op in ops.items():
                if method in ("get", "post", "put", "delete"):
                    self.operations.append((method.upper(), pattern, template, op, ops.get("parameters") or []))
        self.operations.sort(key=lambda o: o[1].pattern.count("[^/]+"))  # /jobs/lock before /jobs/{id}

    def find(self, method: str, path: str) -> tuple[str, dict[str, Any], list[Any]]:
        found = [(t, op, shared) for m, p, t, op, shared in self.operations if m == method and p.match(path)]
        assert found, f"{method} {path} is not in Housecall Pro's published API"
        return found[0]

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        """A schema with its $ref and allOf folded in: its properties and required fields."""
        if "$ref" in schema:
            schema = self.doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        props, required = dict(schema.get("properties") or {}), list(schema.get("required") or [])
        for part in schema.get("allOf") or []:
            sub = self.resolve(part)
            props |= sub["properties"]
            required += sub["required"]
        return {"properties": props, "required": required}

    def body(self, op: dict[str, Any]) -> dict[str, Any] | None:
        return op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")


def query_names(op: dict[str, Any], shared: list[Any]) -> set[str]:
    return {p["name"] for p in [*shared, *(op.get("parameters") or [])] if p.get("in") == "query"}


def test_the_fake_serves_only_operations_from_the_published_spec() -> None:
    from tests.fakes.housecallpro import FakeHousecallPro

    spec = Spec()
    for route in FakeHousecallPro().app.routes:
        for method in getattr(route, "methods", set()) - {"HEAD"}:
            spec.find(method, re.sub(r"\{[^}]+\}", "x1", getattr(route, "path", "")))


async def test_every_request_of_a_whole_job_follows_the_published_spec(hcp: HcpRig) -> None:
    validators = pytest.importorskip("openapi_schema_validator")
    fake = hcp.fake
    fake.door.log.clear()
    await hcp.sync()
    async with hcp.client() as client:
        await call(client, "lookup_customer", phone="2175550143")
        await call(client, "find_available_slots", job_type="Furnace repair", date_from=MONDAY.isoformat(), date_to=MONDAY.isoformat())
        booked = await call(client, "create_job", job_type="Furnace repair", summary="No heat", idempotency_key="k1",
                            customer=NEW_CALLER, address="5 Elm St, Springfield, IL 62704", **WINDOW)
        await call(client, "create_job", job_type="Drain cleaning", summary="Slow drain", idempotency_key="k2",
                   customer_id=booked["customer_id"], caller_phone="217 555 0100", address="9 Ash St, Springfield, IL 62704",
                   technician_id=hcp.tech, **window(TUESDAY, 13))
        job = booked["job_id"]
        await call(client, "dispatch_technician", job_id=job, technician_id=hcp.tech, idempotency_key="d1")
        await call(client, "update_job_status", job_id=job, status="on_hold", note="part")
        await call(client, "dispatch_technician", job_id=job, technician_id=hcp.tech, idempotency_key="d2", **window(TUESDAY, 9))
        for status in ("en_route", "arrived", "working"):
            await call(client, "update_job_status", job_id=job, status=status, note="ok")
        fake.complete(job)
        await call(client, "create_invoice", job_id=job, idempotency_key="i1", tax_rate="0.05", discount="10",
                   line_items=[{"description": "Igniter", "kind": "material", "quantity": "2", "unit_price": "44.75"}])
        fake.issue_invoice(job)
        await call(client, "create_invoice", job_id=job, idempotency_key="i2",
                   line_items=[{"description": "Igniter", "kind": "material", "quantity": "2", "unit_price": "44.75"}])
        await call(client, "get_customer", customer_id=booked["customer_id"])
        await call(client, "list_jobs", date_from=at(day(-1), 0), date_to=at(TUESDAY + (TUESDAY - MONDAY), 0))
        await call(client, "list_technicians")
    spec = Spec()
    seen = set()
    assert fake.door.log
    for x in fake.door.log:
        template, op, shared = spec.find(x.method, x.path)
        seen.add((x.method, op.get("operationId", template)))
        security = [name for entry in op.get("security") or [] for name in entry]
        assert not security or COMPANY_KEY in security, f"{x.method} {template} does not take a company's API key"
        names = {k.removesuffix("[]") for k in x.query}
        assert names <= query_names(op, shared), f"{x.method} {template}: undeclared parameters {names - query_names(op, shared)}"
        if x.body is not None:
            schema = spec.body(op)
            assert schema is not None, f"{x.method} {template} takes no JSON body"
            folded = spec.resolve(schema)
            assert set(x.body) <= set(folded["properties"]), \
                f"{x.method} {template}: fields the spec does not define {set(x.body) - set(folded['properties'])}"
            assert set(folded["required"]) <= set(x.body), f"{x.method} {template}: required {set(folded['required']) - set(x.body)}"
            errors = list(validators.OAS30Validator({**schema, "components": spec.doc["components"]}).iter_errors(x.body))
            assert not errors, f"{x.method} {template}: {errors[0].message}"
            if (x.method, template) == ("POST", "/customers"):
                assert any(x.body.get(f) for f in ONE_OF_CONTACT), "a new customer needs one of its names, email or phones"
                for address in x.body.get("addresses") or []:  # what an address added later must have
                    assert all(address.get(f) for f in ("street", "city", "state", "zip", "country")), address
        assert x.status in (429, 504) or x.status >= 500 or str(x.status) in op["responses"], f"{x.method} {template}: {x.status}"
    assert not fake.ignored, fake.ignored
    assert len(seen) >= 14, seen  # the exchange covered the connector's operations, not a handful
