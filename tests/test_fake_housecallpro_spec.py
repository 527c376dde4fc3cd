"""The fake Housecall Pro's answers and refusals checked against the published OpenAPI in
../shared/specs/housecallpro (skipped where that folder is absent): every route is an operation of the
spec, and every answer a connector reads validates against the operation's response schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.housecallpro import FakeHousecallPro
from tests.test_fake_housecallpro import Pro
from tests.when import TUESDAY, at

SPEC = Path(__file__).resolve().parents[2] / "shared" / "specs" / "housecallpro" / "housecall-v1.yaml"
pytestmark = [pytest.mark.anyio, pytest.mark.skipif(not SPEC.is_file(), reason=f"Housecall Pro's published spec is not at {SPEC}")]


class Schemas:
    def __init__(self) -> None:
        validators = pytest.importorskip("openapi_schema_validator")
        self.doc = yaml.safe_load(SPEC.read_text())
        self.validators = validators

    def check(self, method: str, path: str, status: str, answer: Any) -> None:
        op = self.doc["paths"][path][method]
        schema = op["responses"][status]["content"]["application/json"]["schema"]
        validator = self.validators.OAS30Validator({**schema, "components": self.doc["components"]})
        errors = sorted(validator.iter_errors(answer), key=str)
        assert not errors, f"{method.upper()} {path}: {errors[0].message} at {list(errors[0].absolute_path)}"


async def test_answers_match_the_published_response_schemas() -> None:
    spec = Schemas()
    fake = FakeHousecallPro()
    pro = Pro(fake)
    job = await pro.scheduled_job(notes="fsm-mcp:key-0003", tags=["fsm-mcp"])
    spec.check("get", "/customers", "200", (await pro.http.get("/customers")).json())
    spec.check("get", "/customers/{customer_id}", "200", (await pro.http.get(f"/customers/{pro.customer}")).json())
    created = await pro.http.post("/customers", json={"first_name": "Cy"})
    spec.check("post", "/customers", "201", created.json())
    spec.check("put", "/customers/{customer_id}", "200",
               (await pro.http.put(f"/customers/{pro.customer}", json={"email": "ann@example.com"})).json())
    spec.check("get", "/employees", "200", (await pro.http.get("/employees")).json())
    spec.check("post", "/jobs", "201", job)
    spec.check("get", "/jobs", "200", (await pro.http.get("/jobs", params={"expand[]": "appointments"})).json())
    spec.check("get", "/jobs/{id}", "200", (await pro.http.get(f"/jobs/{job['id']}")).json())
    spec.check("put", "/jobs/{job_id}/schedule", "200", (await pro.http.put(f"/jobs/{job['id']}/schedule", json={
        "start_time": at(TUESDAY, 9), "end_time": at(TUESDAY, 10)})).json())
    spec.check("put", "/jobs/{job_id}/dispatch", "200", (await pro.http.put(f"/jobs/{job['id']}/dispatch", json={
        "dispatched_employees": [{"employee_id": pro.dana}]})).json())
    spec.check("delete", "/jobs/{job_id}/schedule", "200", (await pro.http.delete(f"/jobs/{job['id']}/schedule")).json())
    spec.check("post", "/jobs/{job_id}/notes", "201",
               (await pro.http.post(f"/jobs/{job['id']}/notes", json={"content": "gate code 1234"})).json())
    spec.check("post", "/customers/{customer_id}/addresses", "200", (await pro.http.post(
        f"/customers/{pro.customer}/addresses", json={"street": "1 A St", "city": "B", "state": "IL", "zip": "62701",
                                                      "country": "US"})).json())


async def test_answers_about_money_appointments_and_settings_match_the_published_schemas() -> None:
    spec = Schemas()
    fake = FakeHousecallPro()
    pro = Pro(fake)
    fake.add_job_type("Furnace repair")
    fake.add_lead_source("Phone")
    job = await pro.scheduled_job(tags=["fsm-mcp"])
    jid = job["id"]
    added = await pro.http.post(f"/jobs/{jid}/line_items", json={"name": "Labor", "unit_price": 12500})
    spec.check("post", "/jobs/{job_id}/line_items", "201", added.json())
    spec.check("put", "/jobs/{job_id}/line_items/{id}", "200", (await pro.http.put(
        f"/jobs/{jid}/line_items/{added.json()['id']}", json={"name": "Labor", "unit_price": 15000})).json())
    spec.check("put", "/jobs/{job_id}/line_items/bulk_update", "200", (await pro.http.put(
        f"/jobs/{jid}/line_items/bulk_update", json={"append_line_items": True, "line_items": [{"name": "Filter"}]})).json())
    spec.check("get", "/jobs/{job_id}/line_items", "200", (await pro.http.get(f"/jobs/{jid}/line_items")).json())
    spec.check("delete", "/jobs/{job_id}/line_items/{id}", "200",
               (await pro.http.delete(f"/jobs/{jid}/line_items/{added.json()['id']}")).json())
    uuid = fake.issue_invoice(jid)
    fake.pay_invoice(uuid)
    spec.check("get", "/jobs/{job_id}/invoices", "200", (await pro.http.get(f"/jobs/{jid}/invoices")).json())
    spec.check("get", "/invoices", "200", (await pro.http.get("/invoices")).json())
    spec.check("get", "/api/invoices/{uuid}", "200", (await pro.http.get(f"/api/invoices/{uuid}")).json())
    made = await pro.http.post(f"/jobs/{jid}/appointments", json={
        "start_time": at(TUESDAY, 9), "end_time": at(TUESDAY, 11), "dispatched_employees_ids": [pro.dana]})
    spec.check("post", "/jobs/{job_id}/appointments", "201", made.json())
    spec.check("get", "/jobs/{job_id}/appointments", "200", (await pro.http.get(f"/jobs/{jid}/appointments")).json())
    spec.check("put", "/jobs/{job_id}/appointments/{appointment_id}", "200", (await pro.http.put(
        f"/jobs/{jid}/appointments/{made.json()['id']}", json={"start_time": at(TUESDAY, 10), "end_time": at(TUESDAY, 12),
                                                                "dispatched_employees_ids": []})).json())
    tag = (await pro.http.post("/tags", json={"name": "vip"})).json()
    spec.check("post", "/tags", "201", tag)
    spec.check("get", "/tags", "200", (await pro.http.get("/tags")).json())
    spec.check("post", "/jobs/{job_id}/tags", "201",
               (await pro.http.post(f"/jobs/{jid}/tags", json={"tag_id": tag["id"]})).json())
    spec.check("delete", "/jobs/{job_id}/tags/{tag_id}", "200", (await pro.http.delete(f"/jobs/{jid}/tags/{tag['id']}")).json())
    spec.check("get", "/lead_sources", "200", (await pro.http.get("/lead_sources")).json())
    spec.check("post", "/lead_sources", "201", (await pro.http.post("/lead_sources", json={"name": "Web"})).json())
    spec.check("get", "/job_fields/job_types", "200", (await pro.http.get("/job_fields/job_types")).json())
    spec.check("post", "/job_fields/job_types", "200", (await pro.http.post("/job_fields/job_types", json={"name": "AC"})).json())
    spec.check("get", "/company", "200", (await pro.http.get("/company")).json())
    (booked,) = fake.set_pipeline("Booked")
    spec.check("get", "/pipeline/statuses", "200", (await pro.http.get("/pipeline/statuses", params={"resource_type": "job"})).json())
    spec.check("put", "/pipeline/statuses", "200", (await pro.http.put("/pipeline/statuses", json={
        "resource_type": "job", "resource_id": jid, "status_id": booked})).json())
    spec.check("get", "/jobs/{id}", "200", (await pro.http.get(f"/jobs/{jid}", params={"expand[]": "appointments"})).json())


def test_every_route_the_fake_serves_is_an_operation_of_the_published_spec() -> None:
    doc = yaml.safe_load(SPEC.read_text())
    for route in FakeHousecallPro().app.routes:
        template = route.path  # type: ignore[attr-defined]
        for method in route.methods - {"HEAD"}:  # type: ignore[attr-defined]
            assert method.lower() in doc["paths"].get(template, {}), f"{method} {template} is not in the spec"


async def test_the_refusal_bodies_have_the_shapes_the_spec_gives_them() -> None:
    spec = Schemas()
    pro = Pro(FakeHousecallPro())
    job = await pro.scheduled_job()
    missing = await pro.http.get("/jobs/job_missing")
    assert missing.status_code == 404
    spec.check("post", "/jobs/{job_id}/lock", "404", missing.json())  # ErrorResponse, the spec's example of a missing job
    refused = await pro.http.put(f"/jobs/{job['id']}/line_items/li_missing", json={"name": "X"})
    assert refused.status_code == 404
    bad = await pro.http.post(f"/jobs/{job['id']}/line_items", json={"unit_price": 1})
    spec.check("put", "/jobs/{job_id}/line_items/{id}", "400", bad.json())
    assert isinstance(bad.json()["message"], str)
    unauthorized = await pro.http.get("/pipeline/statuses", params={"resource_type": "job"}, headers={"Authorization": ""})
    spec.check("get", "/pipeline/statuses", "401", unauthorized.json())
