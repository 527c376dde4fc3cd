"""The fake QuickBooks Online itself: what a connector will lean on must behave as Intuit documents
it, or the connector's tests prove nothing. Idempotent replay of `requestid`, refresh tokens that
rotate, the per-company limits and the holds their 429s announce, signed webhooks in both forms,
required fields refused in Intuit's Fault shape, queries and change data capture."""

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
from tests.fakes.quickbooks import (
    AUTHORIZE_PATH,
    CLIENT_ID,
    CLIENT_SECRET,
    REALM,
    SCOPE,
    TOKEN_PATH,
    VERIFIER_TOKEN,
    FakeQuickBooks,
)
from tests.fakes.signed_hooks import Receiver, sign
from tests.fakes.standalone import printed_credentials

SPECS = Path(__file__).resolve().parents[2] / "shared" / "specs" / "quickbooks"
BASE = f"/v3/company/{REALM}"
pytestmark = pytest.mark.anyio


class Books:
    """An HTTP client on the fake, holding the tokens a connector would hold."""

    def __init__(self, fake: FakeQuickBooks) -> None:
        self.fake = fake
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(fake.app), base_url="http://qbo.test")
        self.token = fake.connect()["access_token"]

    async def post(self, path: str, body: Any, **params: str) -> httpx.Response:
        return await self.http.post(BASE + path, json=body, params=params, headers={"Authorization": f"Bearer {self.token}"})

    async def get(self, path: str, **params: str) -> httpx.Response:
        return await self.http.get(BASE + path, params=params, headers={"Authorization": f"Bearer {self.token}"})

    async def invoice_for(self, customer: str, amount: str = "150.00", **params: str) -> httpx.Response:
        return await self.post("/invoice", {"CustomerRef": {"value": customer}, "DocNumber": "J-1001", "Line": [
            {"Amount": amount, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"Qty": 1, "UnitPrice": amount}}],
            "TxnTaxDetail": {"TotalTax": "12.38"}}, **params)


def fault_of(answer: httpx.Response) -> dict[str, Any]:
    return answer.json()["Fault"]["Error"][0]  # type: ignore[no-any-return]


async def test_a_repeated_requestid_gets_the_first_answer_even_when_that_answer_was_lost() -> None:
    fake = FakeQuickBooks(Chaos(p_lost=1.0))
    books = Books(fake)
    customer = fake.add_customer("William Jenkins")
    lost = await books.invoice_for(customer, requestid="fsm-inv-0001")
    assert lost.status_code == 504  # done in the books, answer lost on the way
    fake.chaos.p_lost = 0.0
    again = await books.invoice_for(customer, requestid="fsm-inv-0001")
    assert again.status_code == 200 and again.json()["Invoice"]["TotalAmt"] == 162.38
    assert list(fake.company().tables["Invoice"]) == [again.json()["Invoice"]["Id"]]  # written once
    other = await books.invoice_for(customer, requestid="fsm-inv-0002")
    assert other.json()["Invoice"]["Id"] != again.json()["Invoice"]["Id"]


async def test_a_requestid_longer_than_50_characters_is_refused_and_nothing_is_written() -> None:
    fake = FakeQuickBooks()
    books = Books(fake)
    customer = fake.add_customer("William Jenkins")
    answer = await books.invoice_for(customer, requestid="x" * 51)
    assert answer.status_code == 400 and fault_of(answer)["element"] == "requestid"
    assert fake.company().tables["Invoice"] == {}
    assert (await books.invoice_for(customer, requestid="x" * 50)).status_code == 200


async def test_refresh_tokens_rotate_and_a_used_one_is_refused() -> None:
    fake = FakeQuickBooks()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(fake.app), base_url="http://qbo.test") as http:
        consent = await http.get(AUTHORIZE_PATH, params={"client_id": CLIENT_ID, "response_type": "code", "scope": SCOPE,
                                                         "redirect_uri": "http://app.test/callback", "state": "s1"})
        back = parse_qs(urlparse(consent.headers["location"]).query)
        assert consent.status_code == 302 and back["state"] == ["s1"] and back["realmId"] == [REALM]
        basic = httpx.BasicAuth(CLIENT_ID, CLIENT_SECRET)
        first = await http.post(TOKEN_PATH, auth=basic, data={"grant_type": "authorization_code", "code": back["code"][0],
                                                              "redirect_uri": "http://app.test/callback"})
        assert first.status_code == 200 and first.json()["expires_in"] == 3600
        reused = await http.post(TOKEN_PATH, auth=basic, data={"grant_type": "authorization_code", "code": back["code"][0],
                                                               "redirect_uri": "http://app.test/callback"})
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"  # a code is good once
        old = first.json()["refresh_token"]
        second = await http.post(TOKEN_PATH, auth=basic, data={"grant_type": "refresh_token", "refresh_token": old})
        assert second.status_code == 200 and second.json()["refresh_token"] != old
        again = await http.post(TOKEN_PATH, auth=basic, data={"grant_type": "refresh_token", "refresh_token": old})
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
        assert fake.auth.dead_refresh_uses == 1
        third = await http.post(TOKEN_PATH, auth=basic, data={"grant_type": "refresh_token",
                                                              "refresh_token": second.json()["refresh_token"]})
        assert third.status_code == 200
        wrong = await http.post(TOKEN_PATH, auth=httpx.BasicAuth(CLIENT_ID, "nope"),
                                data={"grant_type": "refresh_token", "refresh_token": third.json()["refresh_token"]})
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


async def test_an_access_token_stops_working_after_its_hour() -> None:
    clock = Clock()
    fake = FakeQuickBooks(clock=clock)
    books = Books(fake)
    assert (await books.get("/customer/1")).status_code == 400  # authenticated: the customer just is not there
    clock.advance(timedelta(seconds=3601))
    expired = await books.get("/customer/1")
    assert expired.status_code == 401 and expired.json()["Fault"]["type"] == "AuthenticationFault"


async def test_past_500_requests_a_minute_a_company_gets_429_and_requests_inside_the_hold_are_counted() -> None:
    clock = Clock()
    fake = FakeQuickBooks(clock=clock)
    books = Books(fake)
    for _ in range(500):
        assert (await books.get("/item/1")).status_code == 200
    refused = await books.get("/item/1")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert fake.limits.inside_hold[REALM] == 0
    clock.advance(timedelta(seconds=0.5))
    assert (await books.get("/item/1")).status_code == 429  # sent before Retry-After had passed
    assert fake.limits.inside_hold[REALM] == 1
    clock.advance(timedelta(seconds=61))
    assert (await books.get("/item/1")).status_code == 200
    assert fake.limits.inside_hold[REALM] == 1


async def test_an_eleventh_request_at_once_gets_429() -> None:
    fake = FakeQuickBooks(Chaos(latency=0.3))
    books = Books(fake)
    answers: list[int] = []

    async def one() -> None:
        answers.append((await books.get("/item/1")).status_code)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            for _ in range(11):
                group.start_soon(one)
    assert sorted(answers) == [200] * 10 + [429]


async def test_a_chaos_429_opens_a_hold_on_the_company() -> None:
    clock = Clock()
    fake = FakeQuickBooks(Chaos(p429=1.0, retry_after="2"), clock=clock)
    books = Books(fake)
    assert (await books.get("/item/1")).headers["Retry-After"] == "2"
    clock.advance(timedelta(seconds=1))
    await books.get("/item/1")
    clock.advance(timedelta(seconds=5))
    fake.chaos.p429 = 0.0
    assert (await books.get("/item/1")).status_code == 200
    assert fake.limits.inside_hold[REALM] == 1


def test_the_signature_is_the_base64_hmac_sha256_of_the_body_under_the_verifier_token() -> None:
    # RFC 4231-style known vector: HMAC-SHA256(key="key", "The quick brown fox jumps over the lazy dog")
    known = bytes.fromhex("f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
    assert sign(b"The quick brown fox jumps over the lazy dog", "key") == base64.b64encode(known).decode()


async def test_webhooks_come_signed_in_both_forms_repeated_and_shuffled_on_demand() -> None:
    fake = FakeQuickBooks()
    customer = fake.add_customer("William Jenkins")
    invoice = fake.company().create("Invoice", {"CustomerRef": {"value": customer}, "Line": [
        {"Amount": 100, "DetailType": "SalesItemLineDetail"}]})
    fake.pay(invoice["Id"])
    app = Receiver()
    async with app.client() as client:
        legacy = await fake.deliver("http://app.test/hooks", repeat=2, shuffle=True, per_delivery=1, client=client)
        changes = fake.company().changes
        cloud = await fake.deliver("http://app.test/hooks", changes=[(REALM, c) for c in changes], form="cloudevents",
                                   client=client)
    assert len(legacy) == 2 * len(changes) and all(d.status == 200 for d in legacy + cloud)
    for headers, body in app.got:
        expected = base64.b64encode(hmac.new(VERIFIER_TOKEN.encode(), body, hashlib.sha256).digest()).decode()
        assert headers["intuit-signature"] == expected
    announced = [json.loads(body) for _, body in app.got]
    olds = [(e["name"], e["id"], e["operation"]) for p in announced[:-1] for n in p["eventNotifications"]
            for e in n["dataChangeEvent"]["entities"]]
    assert sorted(olds) == sorted([(c.entity, c.id, c.operation) for c in changes] * 2)
    assert ("Payment", "qbo.payment.created.v1") in [(e["type"].split(".")[1].title(), e["type"]) for e in announced[-1]]
    assert {e["intuitaccountid"] for e in announced[-1]} == {REALM}


@pytest.mark.skipif(not (SPECS / "quickbooks-webhooks.yml").is_file(), reason=f"Intuit's webhook description is not in {SPECS}")
async def test_the_older_webhook_payload_follows_the_published_schema() -> None:
    from jsonschema import Draft202012Validator
    doc = yaml.safe_load((SPECS / "quickbooks-webhooks.yml").read_text())
    schema = {**doc["components"]["schemas"]["WebhookPayload"], "$defs": doc["components"]["schemas"]}
    schema = json.loads(json.dumps(schema).replace("#/components/schemas/", "#/$defs/"))
    fake = FakeQuickBooks()
    fake.add_customer("William Jenkins")
    for payload in fake.notifications(fake.pending()):
        Draft202012Validator(schema).validate(payload)


async def test_required_fields_are_refused_with_intuits_fault_and_nothing_is_written() -> None:
    fake = FakeQuickBooks()
    books = Books(fake)
    nameless = await books.post("/customer", {"GivenName": "Bill"})
    assert nameless.status_code == 400 and fault_of(nameless)["code"] == "2020" and fault_of(nameless)["element"] == "DisplayName"
    customer = fake.add_customer("William Jenkins")
    twin = await books.post("/customer", {"DisplayName": "william jenkins"})
    assert fault_of(twin)["code"] == "6240"
    lineless = await books.post("/invoice", {"CustomerRef": {"value": customer}})
    assert fault_of(lineless)["element"] == "Line"
    miscounted = await books.post("/invoice", {"CustomerRef": {"value": customer}, "Line": [
        {"Amount": 100, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"Qty": 2, "UnitPrice": 40}}]})
    assert fault_of(miscounted)["code"] == "6070"
    unpaid = await books.post("/payment", {"CustomerRef": {"value": customer}})
    assert fault_of(unpaid)["element"] == "TotalAmt"
    item = await books.post("/item", {"Name": "Labour", "Type": "Service"})
    assert fault_of(item)["element"] == "IncomeAccountRef"
    assert len(fake.company().tables["Customer"]) == 1 and fake.company().tables["Invoice"] == {}
    assert fake.company().tables["Payment"] == {} and len(fake.company().tables["Item"]) == 1


async def test_updates_need_the_latest_synctoken_and_a_sparse_one_changes_only_what_it_names() -> None:
    fake = FakeQuickBooks()
    books = Books(fake)
    customer = fake.add_customer("William Jenkins", email="bill@example.com")
    stale = await books.post(f"/customer/{customer}", {"Id": customer, "SyncToken": "7", "sparse": True, "Notes": "x"})
    assert stale.status_code == 400 and fault_of(stale)["code"] == "5010"
    sparse = await books.post("/customer", {"Id": customer, "SyncToken": "0", "sparse": True, "Notes": "gate code 4411"})
    assert sparse.json()["Customer"]["PrimaryEmailAddr"] == {"Address": "bill@example.com"}
    assert sparse.json()["Customer"]["SyncToken"] == "1"
    full = await books.post(f"/customer/{customer}", {"Id": customer, "SyncToken": "1", "DisplayName": "Bill Jenkins"})
    assert "PrimaryEmailAddr" not in full.json()["Customer"] and "Notes" not in full.json()["Customer"]


async def test_a_payment_taken_in_the_books_lowers_the_invoice_and_customer_balance() -> None:
    fake = FakeQuickBooks()
    books = Books(fake)
    customer = fake.add_customer("William Jenkins")
    invoice = (await books.invoice_for(customer)).json()["Invoice"]
    fake.pay(invoice["Id"], "62.38")
    read = (await books.get(f"/invoice/{invoice['Id']}")).json()["Invoice"]
    assert read["Balance"] == 100 and read["LinkedTxn"][0]["TxnType"] == "Payment"
    assert (await books.get(f"/customer/{customer}")).json()["Customer"]["Balance"] == 100
    over = await books.post("/payment", {"CustomerRef": {"value": customer}, "TotalAmt": 200, "Line": [
        {"Amount": 200, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}]})
    assert over.status_code == 400 and fault_of(over)["code"] == "6000"


async def test_the_query_finds_customers_by_name_email_and_phone_and_invoices_by_docnumber() -> None:
    fake = FakeQuickBooks()
    books = Books(fake)
    customer = fake.add_customer("William O'Jenkins", email="bill@example.com", phone="(217) 555-0101")
    fake.add_customer("Dana Reyes")
    await books.invoice_for(customer)

    async def found(text: str) -> dict[str, Any]:
        answer = await books.get("/query", query=text)
        assert answer.status_code == 200, answer.text
        return answer.json()["QueryResponse"]  # type: ignore[no-any-return]

    assert (await found("select * from Customer where DisplayName = 'William O\\'Jenkins'"))["Customer"][0]["Id"] == customer
    assert (await found("SELECT * FROM Customer WHERE PrimaryEmailAddr = 'BILL@example.com'"))["Customer"][0]["Id"] == customer
    assert (await found("select * from Customer where PrimaryPhone = '(217) 555-0101'"))["Customer"][0]["Id"] == customer
    assert len((await found("select * from Customer where DisplayName LIKE '%a%' MAXRESULTS 1"))["Customer"]) == 1
    assert (await found("select * from Invoice where DocNumber = 'J-1001'"))["Invoice"][0]["TotalAmt"] == 162.38
    assert await found("select * from Invoice where DocNumber = 'J-9999'") == {}
    assert (await found("select count(*) from Customer"))["totalCount"] == 2
    unqueryable = await books.get("/query", query="select * from Customer where Notes = 'x'")
    assert unqueryable.status_code == 400 and fault_of(unqueryable)["code"] == "4001"
    broken = await books.get("/query", query="select * from Customer where DisplayName = 'x' OR Id = '1'")
    assert broken.status_code == 400 and fault_of(broken)["code"] == "4000"


async def test_change_data_capture_goes_back_30_days_and_answers_at_most_1000_objects() -> None:
    clock = Clock()
    fake = FakeQuickBooks(clock=clock)
    books = Books(fake)
    before = clock.now()
    for n in range(1001):
        fake.add_customer(f"Customer {n}")
    clock.advance(timedelta(minutes=1))
    later = clock.now()
    invoice = (await books.invoice_for("2")).json()["Invoice"]
    since = before.isoformat()
    everything = (await books.get("/cdc", entities="Customer,Invoice", changedSince=since)).json()["CDCResponse"][0]
    sizes = [sum(len(v) for v in part.values() if isinstance(v, list)) for part in everything["QueryResponse"]]
    assert sum(sizes) == 1000
    recent = (await books.get("/cdc", entities="Invoice,Customer", changedSince=later.isoformat())).json()
    assert recent["CDCResponse"][0]["QueryResponse"][0]["Invoice"][0]["Id"] == invoice["Id"]
    clock.advance(timedelta(days=31))
    books.token = fake.connect()["access_token"]  # the hour's token has long expired
    too_old = await books.get("/cdc", entities="Invoice", changedSince=since)
    assert too_old.status_code == 400 and fault_of(too_old)["element"] == "changedSince"


@pytest.mark.skipif(not (SPECS / "quickbooks-accounting.yml").is_file(), reason=f"the QuickBooks OpenAPI is not in {SPECS}")
def test_the_fake_serves_only_operations_of_the_published_spec_and_intuits_documented_extras() -> None:
    import re
    doc = yaml.safe_load((SPECS / "quickbooks-accounting.yml").read_text())
    published = {(m.upper(), re.sub(r"\{[^}]+\}", "{id}", p)) for p, ops in doc["paths"].items() for m in ops}
    extras = {("GET", "/cdc"), ("GET", AUTHORIZE_PATH), ("POST", TOKEN_PATH)}  # documented by Intuit apart from the spec
    for route in FakeQuickBooks().app.routes:
        path = getattr(route, "path", "").replace(BASE.replace(REALM, "{realm}"), "")
        for method in getattr(route, "methods", set()) - {"HEAD"}:
            assert (method, path) in published | extras, f"{method} {path} is not in the published API"


def test_the_fake_runs_standalone_and_prints_the_credentials_to_use() -> None:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.quickbooks", "--port", str(port), "--customers", "2"],
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        printed = printed_credentials(proc.stdout)
        assert printed["client id"] == CLIENT_ID and printed["realm id"] == REALM
        answer = httpx.get(f"http://127.0.0.1:{port}{BASE}/query", params={"query": "select count(*) from Customer"},
                           headers={"Authorization": f"Bearer {printed['access token']}"}, timeout=20)
        assert answer.json()["QueryResponse"]["totalCount"] == 2
    finally:
        proc.terminate()
        proc.wait(timeout=10)
