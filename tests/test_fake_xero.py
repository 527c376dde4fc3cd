"""The fake Xero itself: Idempotency-Key replay, refresh tokens that rotate (and need
offline_access), the organisation named by Xero-Tenant-Id, the per-organisation limits and the
holds their 429s announce, the intent-to-receive check before any webhook, signatures, required
fields refused as a ValidationException, If-Modified-Since and payments that settle invoices."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import anyio
import httpx2 as httpx
import pytest
import yaml

from fsm_mcp.clock import Clock
from tests.fakes.chaos import Chaos
from tests.fakes.signed_hooks import Receiver
from tests.fakes.standalone import printed_credentials
from tests.fakes.xero import (
    API,
    AUTHORIZE_PATH,
    CLIENT_ID,
    CLIENT_SECRET,
    SCOPE,
    TENANT,
    TOKEN_PATH,
    WEBHOOK_KEY,
    FakeXero,
)

SPECS = Path(__file__).resolve().parents[2] / "shared" / "specs" / "xero"
pytestmark = pytest.mark.anyio


class Books:
    def __init__(self, fake: FakeXero, tenant: str = TENANT) -> None:
        self.fake, self.tenant = fake, tenant
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(fake.app), base_url="http://xero.test")
        self.token = fake.connect()["access_token"]

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Xero-Tenant-Id": self.tenant, **extra}

    async def put(self, kind: str, *elements: dict[str, Any], key: str | None = None, **params: str) -> httpx.Response:
        extra = {"Idempotency-Key": key} if key is not None else {}
        return await self.http.put(f"{API}/{kind}", json={kind: list(elements)}, params=params, headers=self.headers(**extra))

    async def get(self, path: str, since: str | None = None, **params: str) -> httpx.Response:
        extra = {"If-Modified-Since": since} if since else {}
        return await self.http.get(f"{API}/{path}", params=params, headers=self.headers(**extra))


def invoice(contact: str, **changes: Any) -> dict[str, Any]:
    return {"Type": "ACCREC", "Contact": {"ContactID": contact}, "Reference": "J-1001", "Status": "AUTHORISED",
            "DueDate": "2030-01-31", "LineItems": [{"Description": "Furnace repair", "Quantity": 2, "UnitAmount": 75,
                                                    "AccountCode": "200", "TaxType": "OUTPUT"}], **changes}


def errors_of(answer: httpx.Response) -> list[str]:
    return [e["Message"] for element in answer.json()["Elements"] for e in element["ValidationErrors"]]


async def test_a_repeated_idempotency_key_gets_the_first_answer_even_when_that_answer_was_lost() -> None:
    fake = FakeXero(Chaos(p_lost=1.0))
    books = Books(fake)
    contact = fake.add_contact("William Jenkins")
    assert (await books.put("Invoices", invoice(contact), key="fsm-invoice-0001")).status_code == 504
    fake.chaos.p_lost = 0.0
    again = await books.put("Invoices", invoice(contact), key="fsm-invoice-0001")
    assert again.status_code == 200 and again.json()["Invoices"][0]["Total"] == 162.38
    assert list(fake.org().tables["Invoices"]) == [again.json()["Invoices"][0]["InvoiceID"]]
    too_long = await books.put("Invoices", invoice(contact, Reference="J-2"), key="k" * 129)
    assert too_long.status_code == 400 and "128" in errors_of(too_long)[0]
    assert len(fake.org().tables["Invoices"]) == 1
    assert (await books.put("Invoices", invoice(contact, Reference="J-2"), key="k" * 128)).status_code == 200


async def test_refresh_tokens_rotate_need_offline_access_and_a_used_one_is_refused_after_the_grace() -> None:
    fake = FakeXero()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(fake.app), base_url="http://xero.test") as http:
        async def code(scope: str) -> str:
            consent = await http.get(AUTHORIZE_PATH, params={"response_type": "code", "client_id": CLIENT_ID, "scope": scope,
                                                             "redirect_uri": "http://app.test/cb", "state": "s"})
            return parse_qs(urlparse(consent.headers["location"]).query)["code"][0]

        form = {"grant_type": "authorization_code", "redirect_uri": "http://app.test/cb", "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET}
        online = await http.post(TOKEN_PATH, data={**form, "code": await code("openid accounting.transactions")})
        assert online.status_code == 200 and "refresh_token" not in online.json()
        first = await http.post(TOKEN_PATH, data={**form, "code": await code(SCOPE)})
        assert first.json()["expires_in"] == 1800 and first.json()["token_type"] == "Bearer"
        old = first.json()["refresh_token"]
        basic = httpx.BasicAuth(CLIENT_ID, CLIENT_SECRET)
        second = await http.post(TOKEN_PATH, auth=basic, data={"grant_type": "refresh_token", "refresh_token": old})
        assert second.status_code == 200 and second.json()["refresh_token"] != old
        # Xero's grace: the rotated-out token works for 30 minutes more, in case the new one's answer was lost.
        retry = await http.post(TOKEN_PATH, auth=basic, data={"grant_type": "refresh_token", "refresh_token": old})
        assert retry.status_code == 200 and fake.auth.grace_uses == 1 and fake.auth.dead_refresh_uses == 0
        connections = await http.get("/connections", headers={"Authorization": f"Bearer {retry.json()['access_token']}"})
        assert [c["tenantId"] for c in connections.json()] == [TENANT]
        fake.clock.advance(timedelta(minutes=31))
        again = await http.post(TOKEN_PATH, auth=basic, data={"grant_type": "refresh_token", "refresh_token": old})
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant" and fake.auth.dead_refresh_uses == 1


async def test_the_organisation_is_named_by_the_tenant_header_and_tokens_expire() -> None:
    clock = Clock()
    fake = FakeXero(clock=clock)
    books = Books(fake)
    assert (await books.get("Contacts")).status_code == 200
    books.tenant = "00000000-0000-0000-0000-000000000000"
    assert (await books.get("Contacts")).status_code == 403
    books.tenant = TENANT
    clock.advance(timedelta(minutes=31))
    assert (await books.get("Contacts")).status_code == 401


async def test_past_60_calls_a_minute_an_organisation_gets_429_and_requests_inside_the_hold_are_counted() -> None:
    clock = Clock()
    fake = FakeXero(clock=clock)
    books = Books(fake)
    for _ in range(60):
        assert (await books.get("Items")).status_code == 200
    refused = await books.get("Items")
    assert refused.status_code == 429 and refused.headers["X-Rate-Limit-Problem"] == "minute"
    assert int(refused.headers["Retry-After"]) >= 1
    clock.advance(timedelta(seconds=0.5))
    await books.get("Items")
    assert fake.limits.inside_hold[TENANT] == 1
    clock.advance(timedelta(seconds=61))
    ok = await books.get("Items")
    assert ok.status_code == 200 and ok.headers["X-MinLimit-Remaining"] == "59"
    assert fake.limits.inside_hold[TENANT] == 1


async def test_the_daily_limit_is_per_organisation_and_says_so() -> None:
    clock = Clock()
    fake = FakeXero(clock=clock, per_day=3)
    books = Books(fake)
    for _ in range(3):
        assert (await books.get("Items")).status_code == 200
    refused = await books.get("Items")
    assert refused.headers["X-Rate-Limit-Problem"] == "day" and int(refused.headers["Retry-After"]) > 86_000
    clock.advance(timedelta(days=1, seconds=1))
    books.token = fake.connect()["access_token"]  # the 30-minute token has long expired
    assert (await books.get("Items")).status_code == 200


async def test_a_sixth_call_at_once_gets_429() -> None:
    fake = FakeXero(Chaos(latency=0.3))
    books = Books(fake)
    answers: list[str] = []

    async def one() -> None:
        answer = await books.get("Items")
        answers.append(answer.headers.get("X-Rate-Limit-Problem", str(answer.status_code)))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            for _ in range(6):
                group.start_soon(one)
    assert sorted(answers) == ["200"] * 5 + ["concurrent"]


def verdict(headers: dict[str, str], body: bytes) -> int:
    expected = base64.b64encode(hmac.new(WEBHOOK_KEY.encode(), body, hashlib.sha256).digest()).decode()
    return 200 if hmac.compare_digest(headers.get("x-xero-signature", ""), expected) else 401


async def test_only_an_endpoint_that_passed_the_intent_to_receive_gets_events() -> None:
    fake = FakeXero()
    contact = fake.add_contact("William Jenkins")
    careless = Receiver()  # answers 200 to anything, signed or not
    async with careless.client() as client:
        assert not await fake.intent_to_receive("http://app.test/careless", client)
        with pytest.raises(RuntimeError):
            await fake.deliver("http://app.test/careless", client=client)
    assert any(verdict(h, b) == 401 for h, b in careless.got) and any(verdict(h, b) == 200 for h, b in careless.got)
    books = Books(fake)
    made = (await books.put("Invoices", invoice(contact))).json()["Invoices"][0]
    fake.pay(made["InvoiceID"])
    app = Receiver(verdict)
    async with app.client() as client:
        assert await fake.intent_to_receive("http://app.test/hooks", client)
        sent = await fake.deliver("http://app.test/hooks", repeat=2, shuffle=True, per_delivery=1, client=client)
    assert [d.status for d in sent] == [200] * 6
    events = [e for _, body in app.got[4:] for e in json.loads(body)["events"]]
    assert sorted((e["eventCategory"], e["eventType"]) for e in events) == sorted(
        [("CONTACT", "CREATE"), ("INVOICE", "CREATE"), ("INVOICE", "UPDATE")] * 2)


@pytest.mark.skipif(not (SPECS / "xero-webhooks.yaml").is_file(), reason=f"Xero's webhooks OpenAPI is not in {SPECS}")
async def test_webhook_payloads_follow_the_published_schema() -> None:
    from jsonschema import Draft202012Validator
    schema = yaml.safe_load((SPECS / "xero-webhooks.yaml").read_text())["components"]["schemas"]["WebhookEvent"]
    fake = FakeXero()
    fake.add_contact("William Jenkins")
    app = Receiver(verdict)
    async with app.client() as client:
        await fake.intent_to_receive("http://app.test/hooks", client)
        await fake.deliver("http://app.test/hooks", client=client)
    Draft202012Validator(schema).validate(json.loads(app.got[-1][1]))


async def test_required_fields_are_refused_as_a_validation_exception_and_nothing_is_written() -> None:
    fake = FakeXero()
    books = Books(fake)
    nameless = await books.put("Contacts", {"EmailAddress": "bill@example.com"})
    assert nameless.status_code == 400 and nameless.json()["Type"] == "ValidationException"
    contact = fake.add_contact("William Jenkins")
    twin = await books.put("Contacts", {"Name": "william jenkins"})
    assert "unique across all active contacts" in errors_of(twin)[0]
    bare = await books.put("Invoices", {"Type": "ACCREC", "Contact": {"ContactID": contact}, "Status": "AUTHORISED"})
    assert any("line item" in m for m in errors_of(bare)) and any("Due Date" in m for m in errors_of(bare))
    wrong = await books.put("Invoices", invoice(contact, LineItems=[{"Description": "x", "Quantity": 2, "UnitAmount": 10,
                                                                      "LineAmount": 25, "AccountCode": "200"}]))
    assert "Quantity x UnitAmount" in errors_of(wrong)[0]
    batch = await books.put("Contacts", {"Name": "Dana Reyes"}, {"Name": ""})
    assert batch.status_code == 400 and len(fake.org().tables["Contacts"]) == 1  # all or nothing by default
    mixed = await books.put("Contacts", {"Name": "Dana Reyes"}, {"Name": ""}, summarizeErrors="false")
    assert [c["StatusAttributeString"] for c in mixed.json()["Contacts"]] == ["OK", "ERROR"]
    assert fake.org().tables["Invoices"] == {}


async def test_a_payment_settles_the_invoice_and_no_more_than_is_due_can_be_paid() -> None:
    fake = FakeXero()
    books = Books(fake)
    contact = fake.add_contact("William Jenkins")
    made = (await books.put("Invoices", invoice(contact))).json()["Invoices"][0]
    payment = {"Invoice": {"InvoiceID": made["InvoiceID"]}, "Account": {"Code": "090"}, "Date": "2030-01-02"}
    over = await books.put("Payments", {**payment, "Amount": 500})
    assert "exceeds the amount outstanding" in errors_of(over)[0]
    assert (await books.put("Payments", {**payment, "Amount": 162.38})).status_code == 200
    settled = (await books.get(f"Invoices/{made['InvoiceID']}")).json()["Invoices"][0]
    assert settled["Status"] == "PAID" and settled["AmountDue"] == 0 and settled["AmountPaid"] == 162.38


async def test_lists_answer_only_what_changed_since_if_modified_since_and_filter_with_where() -> None:
    clock = Clock()
    fake = FakeXero(clock=clock)
    books = Books(fake)
    old = fake.add_contact("William Jenkins", email="bill@example.com")
    clock.advance(timedelta(minutes=5))
    since = clock.now().isoformat()
    new = fake.add_contact("Dana Reyes")
    assert [c["ContactID"] for c in (await books.get("Contacts", since=since)).json()["Contacts"]] == [new]
    found = await books.get("Contacts", where='EmailAddress=="BILL@example.com" AND Name.StartsWith("Will")')
    assert [c["ContactID"] for c in found.json()["Contacts"]] == [old]
    paged = (await books.get("Contacts", page="2", pageSize="1", order="Name")).json()
    assert paged["pagination"] == {"page": 2, "pageSize": 1, "pageCount": 2, "itemCount": 2}
    assert paged["Contacts"][0]["Name"] == "William Jenkins"
    refused = await books.get("Contacts", where='Name=="a" OR Name=="b"')
    assert refused.status_code == 400


@pytest.mark.skipif(not (SPECS / "xero_accounting.yaml").is_file(), reason=f"Xero's accounting OpenAPI is not in {SPECS}")
def test_the_fake_serves_only_operations_of_the_published_specs() -> None:
    import re
    published = set()
    for name, prefix in (("xero_accounting.yaml", API), ("xero-identity.yaml", "")):
        doc = yaml.safe_load((SPECS / name).read_text())
        published |= {(m.upper(), prefix + re.sub(r"\{[^}]+\}", "{id}", p)) for p, ops in doc["paths"].items() for m in ops}
    extras = {("GET", AUTHORIZE_PATH), ("POST", TOKEN_PATH), ("GET", "/connections"), ("DELETE", "/connections/{id}")}
    for route in FakeXero().app.routes:
        for method in getattr(route, "methods", set()) - {"HEAD"}:
            assert (method, getattr(route, "path", "")) in published | extras, f"{method} {route} is not published"


def test_the_fake_runs_standalone_and_prints_the_credentials_to_use() -> None:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.xero", "--port", str(port), "--contacts", "2"],
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        printed = printed_credentials(proc.stdout)
        assert printed["tenant id"] == TENANT and printed["webhook key"] == WEBHOOK_KEY
        answer = httpx.get(f"http://127.0.0.1:{port}{API}/Contacts", timeout=20, headers={
            "Authorization": f"Bearer {printed['access token']}", "Xero-Tenant-Id": printed["tenant id"]})
        assert len(answer.json()["Contacts"]) == 2
    finally:
        proc.terminate()
        proc.wait(timeout=10)
