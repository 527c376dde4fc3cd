"""Every request the ServiceTitan connector sends, and every answer the fake gives it, checked
against ServiceTitan's published OpenAPI documents in ../shared/specs (skipped without them):
the operation exists, each query parameter is declared, bodies match their schemas, and each
request keeps to what the operations' descriptions require in prose (a date the contact lists
must be given, the statuses a filter supports, the most ids, the fields a sort takes), which
the fake enforces too."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.fakes.servicetitan import APP_KEY, CLIENT_ID, CLIENT_SECRET, TENANT, FakeServiceTitan
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


# ----- what the operations' descriptions require, beyond their parameter lists -----

EITHER = re.compile(r"Either (\w+) or (\w+) parameter must be specified")
SUPPORTED = re.compile(r"Supported statu?ses are (.+)")
VALUES = re.compile(r"Values: \[([^\]]+)\]")
FIELDS = re.compile(r"Available fields are: ([\w, ]+)")
MAXIMUM = re.compile(r"\(maximum (\d+)\)")


def prose_rules(op: dict[str, Any]) -> list[tuple[str, Any]]:
    """What an operation's descriptions say its query must hold to, read from the spec: (parameter, rule)
    pairs, where the rule is a set of names one of which must be given (parameter "*"), a set of allowed
    values, or a largest count."""
    rules: list[tuple[str, Any]] = []
    either = {n for text in [op.get("description", "")] + [p.get("description", "") for p in op.get("parameters", [])]
              for pair in EITHER.findall(text or "") for n in pair}
    if either:
        rules.append(("*", either))
    for p in op.get("parameters", []):
        text = (p.get("description") or "").replace("\\", "")
        if m := SUPPORTED.search(text):
            rules.append((p["name"], set(re.findall(r'"(\w+)"', m.group(1)))))
        if m := VALUES.search(text):
            rules.append((p["name"], {v.strip().lower() for v in m.group(1).split(",")}))
        if m := FIELDS.search(text):
            rules.append((p["name"], {f"{sign}{v.strip().lower()}" for v in m.group(1).split(",") for sign in "+-"}))
        if m := MAXIMUM.search(text):
            rules.append((p["name"], int(m.group(1))))
        if p["name"] == "page":
            rules.append(("page", range(1, 1 << 31)))  # "starting from 1"
    return rules


def broken(op: dict[str, Any], query: dict[str, str]) -> list[str]:
    """The prose rules a request's query breaks."""
    found = []
    for name, rule in prose_rules(op):
        if name == "*":
            if not rule & set(query):
                found.append(f"none of {sorted(rule)} given")
        elif name in query:
            value = query[name]
            if isinstance(rule, int) and len(value.split(",")) > rule:
                found.append(f"{name}: more than {rule}")
            elif isinstance(rule, range) and not (value.isdigit() and int(value) in rule):
                found.append(f"{name}: {value} out of range")
            elif isinstance(rule, set) and not {v.lower() for v in value.split(",")} <= {r.lower() for r in rule}:
                found.append(f"{name}: {value} not one of {sorted(rule)}")
    return found


def test_the_specs_prose_is_read_where_the_connector_meets_it() -> None:
    spec = Spec()
    contacts, _ = spec.find("GET", "/crm/v2/tenant/1/customers/contacts")
    assert ("*", {"modifiedOn", "modifiedOnOrAfter", "modifiedBefore"}) in prose_rules(contacts)
    jobs, _ = spec.find("GET", "/jpm/v2/tenant/1/jobs")
    assert ("jobStatus", {"Scheduled", "InProgress", "Hold", "Completed", "Canceled"}) in prose_rules(jobs)
    assert set(broken(jobs, {"jobStatus": "Scheduled,Dispatched", "sort": "-CreatedOn", "ids": ",".join(["1"] * 51)})) \
        == {"jobStatus: Scheduled,Dispatched not one of ['Canceled', 'Completed', 'Hold', 'InProgress', 'Scheduled']",
            "ids: more than 50"}


async def test_the_first_sync_and_a_whole_job_keep_to_what_the_operations_descriptions_require(
        rig: Rig, tmp_path: Path) -> None:
    rig.fake.door.log.clear()
    fresh = dataclasses.replace(rig, settings=rig.settings.model_copy(update={"db_path": tmp_path / "fresh.db"}))
    assert (await fresh.sync())["customer-contacts"] >= 1  # a first sync, over lists that refuse a request with no date
    async with rig.client() as client:
        booked = await call(client, "create_job", job_type="Furnace repair", summary="No heat", idempotency_key="k1",
                            customer=NEW_CALLER, address="5 Elm St, Springfield, IL 62704", **WINDOW)
        await call(client, "dispatch_technician", job_id=booked["job_id"], technician_id=rig.tech, idempotency_key="d1")
        for status in ("arrived", "working", "completed"):
            await call(client, "update_job_status", job_id=booked["job_id"], status=status, note="ok")
        for state in ("scheduled", "dispatched", "working", "completed"):
            await call(client, "list_jobs", date_from=at(day(-1), 0), date_to=at(TUESDAY, 0), status=[state])
    spec = Spec()
    for x in rig.fake.door.log:
        op, _ = spec.find(x.method, x.path)
        assert not broken(op, x.query), f"{x.method} {x.path} {x.query}: {broken(op, x.query)}"
        assert x.status != 400, f"{x.method} {x.path} was refused: {x.answer}"


async def test_the_fake_refuses_what_the_operations_descriptions_forbid() -> None:
    fake = FakeServiceTitan()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(fake.app), base_url="http://st.test") as http:
        token = (await http.post("/connect/token", data={"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                                         "client_secret": CLIENT_SECRET})).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "ST-App-Key": APP_KEY}
        tenant = f"tenant/{TENANT}"
        refused = [
            (f"/crm/v2/{tenant}/customers/contacts", {}, "modifiedOnOrAfter"),
            (f"/crm/v2/{tenant}/locations/contacts", {"page": "1"}, "modifiedOnOrAfter"),
            (f"/jpm/v2/{tenant}/jobs", {"jobStatus": "Dispatched"}, "jobStatus"),
            (f"/jpm/v2/{tenant}/appointments", {"status": "Unused"}, "status"),
            (f"/jpm/v2/{tenant}/jobs", {"ids": ",".join(str(n) for n in range(51))}, "ids"),
            (f"/crm/v2/{tenant}/customers", {"sort": "+Name"}, "sort"),
            (f"/crm/v2/{tenant}/customers", {"page": "0"}, "page"),
            (f"/settings/v2/{tenant}/technicians", {"active": "Maybe"}, "active"),
        ]
        spec = Spec()
        for path, query, field in refused:
            op, _ = spec.find("GET", path)
            assert broken(op, query), f"{path} {query} breaks no rule the spec's prose states"
            answer = await http.get(path, params=query, headers=headers)
            assert answer.status_code == 400 and field in answer.json()["errors"], (path, query, answer.text)
        for path in (f"/crm/v2/{tenant}/customers/contacts", f"/crm/v2/{tenant}/locations/contacts"):
            for date in ("modifiedOnOrAfter", "modifiedBefore"):
                answer = await http.get(path, params={date: "2000-01-01T00:00:00Z"}, headers=headers)
                assert answer.status_code == 200, answer.text
