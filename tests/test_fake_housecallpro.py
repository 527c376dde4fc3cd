"""The fake Housecall Pro itself, held to the published spec (its answers are checked against the
spec's schemas in test_fake_housecallpro_spec.py): `Authorization: Token`, customers that need one of their names, email or
phones, addresses that need every part, jobs that need a customer and one of its addresses, the
schedule and dispatch operations and the statuses they (alone) move, line items in cents, invoices
only ever read, paging, the spec's error bodies, and the chaos a connector must survive: 429 holds on
the whole company counted for every request, answers lost after the write, slow answers."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import pytest

from tests.fakes.chaos import Chaos
from tests.fakes.housecallpro import API_KEY, APP_KEY, HEADERS, FakeHousecallPro
from tests.fakes.serve import serving
from tests.fakes.standalone import printed_credentials
from tests.when import MONDAY, TUESDAY, at

pytestmark = pytest.mark.anyio


class Pro:
    """An HTTP client on the fake, as a connector holds one."""

    def __init__(self, fake: FakeHousecallPro, key: str = API_KEY) -> None:
        self.fake = fake
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(fake.app), base_url="https://api.housecallpro.com",
                                      headers={"Authorization": f"Token {key}"})
        self.dana = fake.add_employee("Dana", "Reyes")
        self.customer = fake.add_customer("Ann Lee", "12 Elm St", "Springfield", "62701", mobile="2175550101")
        self.address = fake.company.customer(self.customer)["addresses"][0]["id"]

    async def job(self, **fields: Any) -> httpx.Response:
        body = {"customer_id": self.customer, "address_id": self.address, **fields}
        return await self.http.post("/jobs", json=body)

    async def scheduled_job(self, **fields: Any) -> dict[str, Any]:
        answer = await self.job(schedule={"scheduled_start": at(MONDAY, 9), "scheduled_end": at(MONDAY, 11),
                                          "arrival_window": 60}, assigned_employee_ids=[self.dana], **fields)
        assert answer.status_code == 201, answer.text
        return answer.json()  # type: ignore[no-any-return]


async def test_a_request_without_the_token_scheme_and_key_is_refused_with_401() -> None:
    pro = Pro(FakeHousecallPro())
    for header in ("", f"Bearer {API_KEY}", "Token wrong-key", API_KEY):
        answer = await pro.http.get("/customers", headers={"Authorization": header})
        assert answer.status_code == 401 and "Token" in answer.json()["message"]
    assert (await pro.http.get("/customers")).status_code == 200


async def test_a_customer_needs_one_of_its_names_email_or_phones_as_the_create_operation_says() -> None:
    pro = Pro(FakeHousecallPro())
    refused = await pro.http.post("/customers", json={"company": "Acme", "notes": "no name, no phone"})
    assert refused.status_code == 400 and "first_name" in refused.json()
    assert pro.fake.writes["customer"] == 0
    made = await pro.http.post("/customers", json={"home_number": "2175550199", "addresses": [
        {"street": "9 Oak Ave", "city": "Springfield", "state": "IL", "zip": "62704", "country": "US"}]})
    assert made.status_code == 201
    customer = made.json()
    assert customer["home_number"] == "2175550199" and customer["addresses"][0]["street"] == "9 Oak Ave"
    assert (await pro.http.get(f"/customers/{customer['id']}")).json() == customer


async def test_an_address_added_to_a_customer_needs_every_part_the_schema_requires() -> None:
    pro = Pro(FakeHousecallPro())
    path = f"/customers/{pro.customer}/addresses"
    refused = await pro.http.post(path, json={"street": "4 Pine Rd", "city": "Springfield", "state": "IL", "zip": "62702"})
    assert refused.status_code == 400 and refused.json()["country"] == "is required"
    made = await pro.http.post(path, json={"street": "4 Pine Rd", "city": "Springfield", "state": "IL", "zip": "62702",
                                           "country": "US"})
    assert made.status_code == 200
    listed = (await pro.http.get(path)).json()
    assert listed["total_items"] == 2 and made.json()["id"] in {a["id"] for a in listed["addresses"]}
    one = await pro.http.get(f"{path}/{made.json()['id']}")
    assert one.json()["street"] == "4 Pine Rd"
    assert (await pro.http.get(f"/customers/{pro.customer}/addresses/adr_missing")).status_code == 404


async def test_an_update_changes_only_the_fields_it_sends_and_cannot_leave_a_customer_without_a_name_or_phone() -> None:
    pro = Pro(FakeHousecallPro())
    path = f"/customers/{pro.customer}"
    changed = await pro.http.put(path, json={"email": "ann@example.com"})
    assert changed.status_code == 200 and changed.json()["email"] == "ann@example.com"
    assert changed.json()["mobile_number"] == "2175550101"
    emptied = await pro.http.put(path, json={"first_name": None, "last_name": None, "email": None, "mobile_number": None})
    assert emptied.status_code == 400
    assert (await pro.http.put("/customers/cus_missing", json={"email": "x@example.com"})).status_code == 404


async def test_customers_are_found_by_name_email_phone_or_address_and_paged() -> None:
    fake = FakeHousecallPro()
    pro = Pro(fake)
    for n in range(24):
        fake.add_customer(f"Person{n} Smith", f"{n} Birch St", "Springfield", "62701", mobile=f"21755520{n:02d}")
    assert [c["id"] for c in (await pro.http.get("/customers", params={"q": "555-0101"})).json()["customers"]] == [pro.customer]
    assert (await pro.http.get("/customers", params={"q": "elm st"})).json()["total_items"] == 1
    assert (await pro.http.get("/customers", params={"q": "smith"})).json()["total_items"] == 24
    first = (await pro.http.get("/customers")).json()
    assert (first["page"], first["page_size"], first["total_items"], first["total_pages"]) == (1, 10, 25, 3)
    seen = []
    for page in (1, 2, 3):
        got = (await pro.http.get("/customers", params={"page": page, "page_size": 10, "sort_direction": "asc"})).json()
        seen += [c["id"] for c in got["customers"]]
    assert len(set(seen)) == 25 and seen[0] == pro.customer  # oldest first when asked; newest first by default
    assert first["customers"][0]["id"] != pro.customer
    assert (await pro.http.get("/customers", params={"page": 0})).status_code == 400


async def test_only_active_employees_are_listed() -> None:
    fake = FakeHousecallPro()
    pro = Pro(fake)
    fake.add_employee("Sam", "Ortiz", active=False)
    listed = (await pro.http.get("/employees")).json()
    assert [e["id"] for e in listed["employees"]] == [pro.dana] and listed["total_items"] == 1


async def test_a_job_needs_a_customer_and_one_of_its_addresses() -> None:
    fake = FakeHousecallPro()
    pro = Pro(fake)
    assert (await pro.http.post("/jobs", json={"customer_id": pro.customer})).json()["address_id"] == "is required"
    other = fake.add_customer("Bo Diaz", "3 Ash Ct", "Springfield", "62703")
    foreign = fake.company.customer(other)["addresses"][0]["id"]
    assert (await pro.job(address_id=foreign)).status_code == 400
    assert (await pro.job(assigned_employee_ids=["pro_nobody"])).status_code == 400
    assert (await pro.job(schedule={"anytime": True})).json()["anytime_start_date"].startswith("is required")
    assert fake.writes["job"] == 0 and not fake.company.jobs


async def test_a_job_created_with_a_schedule_and_employees_is_scheduled_and_dispatched_to_them() -> None:
    pro = Pro(FakeHousecallPro())
    job = await pro.scheduled_job(notes="fsm-mcp:key-0001", tags=["fsm-mcp"], lead_source="Phone")
    assert job["work_status"] == "scheduled"
    assert [e["id"] for e in job["assigned_employees"]] == [pro.dana]
    assert job["schedule"]["arrival_window"] == 60
    assert job["schedule"]["scheduled_start"].endswith("Z")  # given in the company's local time, answered in UTC
    assert [n["content"] for n in job["notes"]] == ["fsm-mcp:key-0001"] and job["tags"] == ["fsm-mcp"]
    unscheduled = (await pro.job()).json()
    assert unscheduled["work_status"] == "needs scheduling" and unscheduled["assigned_employees"] == []
    assert (await pro.http.get(f"/jobs/{job['id']}")).json()["notes"] == job["notes"]


async def test_a_cut_off_create_is_found_again_by_the_key_in_the_notes_of_the_customers_jobs() -> None:
    fake = FakeHousecallPro(Chaos(p_lost=1.0))
    pro = Pro(fake)
    lost = await pro.job(notes="fsm-mcp:key-0002")
    assert lost.status_code == 504 and fake.writes["job"] == 1 and fake.lost == 1
    fake.chaos.p_lost = 0.0
    jobs = (await pro.http.get("/jobs", params={"customer_id": pro.customer, "sort_by": "created_at"})).json()["jobs"]
    assert [j["id"] for j in jobs if any("fsm-mcp:key-0002" in n["content"] for n in j["notes"])] == list(fake.company.jobs)


async def test_an_invoice_number_already_taken_is_refused_so_a_job_cannot_be_made_twice_with_it() -> None:
    pro = Pro(FakeHousecallPro())
    assert (await pro.job(invoice_number=7001)).status_code == 201
    again = await pro.job(invoice_number=7001)
    assert again.status_code == 422 and "taken" in again.json()["error"]["message"]
    assert (await pro.job()).json()["invoice_number"] != "7001"


async def test_the_schedule_operation_moves_a_job_and_its_dispatch_and_erasing_it_unschedules_it() -> None:
    fake = FakeHousecallPro()
    pro = Pro(fake)
    sam = fake.add_employee("Sam", "Ortiz")
    job = (await pro.job()).json()
    moved = await pro.http.put(f"/jobs/{job['id']}/schedule", json={
        "start_time": at(TUESDAY, 13), "end_time": at(TUESDAY, 15), "arrival_window_in_minutes": 30,
        "dispatched_employees": [{"employee_id": sam}]})
    assert moved.status_code == 200, moved.text
    assert moved.json()["arrival_window_minutes"] == 30 and [e["id"] for e in moved.json()["assigned_employees"]] == [sam]
    read = (await pro.http.get(f"/jobs/{job['id']}")).json()
    assert read["work_status"] == "scheduled" and read["schedule"]["arrival_window"] == 30
    assert (await pro.http.put(f"/jobs/{job['id']}/schedule", json={"end_time": at(TUESDAY, 15)})).status_code == 400
    erased = await pro.http.delete(f"/jobs/{job['id']}/schedule")
    assert erased.json() == {"object": "schedule", "deleted": True}
    assert (await pro.http.get(f"/jobs/{job['id']}")).json()["work_status"] == "needs scheduling"


async def test_dispatch_replaces_the_assigned_employees_and_needs_the_list() -> None:
    fake = FakeHousecallPro()
    pro = Pro(fake)
    sam = fake.add_employee("Sam", "Ortiz")
    job = await pro.scheduled_job()
    path = f"/jobs/{job['id']}/dispatch"
    assert (await pro.http.put(path, json={})).json()["dispatched_employees"] == "is required"
    both = await pro.http.put(path, json={"dispatched_employees": [{"employee_id": pro.dana}, {"employee_id": sam}]})
    assert [e["id"] for e in both.json()["assigned_employees"]] == [pro.dana, sam]
    assert (await pro.http.put(path, json={"dispatched_employees": []})).json()["assigned_employees"] == []
    assert (await pro.http.put("/jobs/job_missing/dispatch", json={"dispatched_employees": []})).json() == {
        "error": {"message": "job not found"}}


async def test_jobs_are_listed_by_customer_status_employee_and_scheduled_time() -> None:
    fake = FakeHousecallPro()
    pro = Pro(fake)
    monday = await pro.scheduled_job()
    loose = (await pro.job()).json()
    other = fake.add_customer("Bo Diaz", "3 Ash Ct", "Springfield", "62703")

    async def ids(**params: Any) -> list[str]:
        answer = await pro.http.get("/jobs", params=params)
        assert answer.status_code == 200, answer.text
        return [j["id"] for j in answer.json()["jobs"]]

    assert set(await ids(customer_id=pro.customer)) == {monday["id"], loose["id"]}
    assert await ids(customer_id=other) == []
    assert await ids(**{"work_status[]": "unscheduled"}) == [loose["id"]]
    assert await ids(work_status="scheduled") == [monday["id"]]
    assert await ids(**{"employee_ids[]": pro.dana}) == [monday["id"]]
    assert await ids(scheduled_start_min=at(MONDAY, 8), scheduled_start_max=at(MONDAY, 10)) == [monday["id"]]
    assert await ids(scheduled_start_min=at(TUESDAY, 0)) == []
    assert (await pro.http.get("/jobs", params={"work_status": "done"})).status_code == 400
    assert (await pro.http.get("/jobs", params={"sort_by": "customer"})).status_code == 400


async def test_the_schedule_and_dispatch_operations_refuse_a_company_key_when_keys_are_held_to_the_spec() -> None:
    fake = FakeHousecallPro(strict_keys=True)
    pro = Pro(fake)
    job = await pro.scheduled_job()
    refused = await pro.http.put(f"/jobs/{job['id']}/dispatch", json={"dispatched_employees": []})
    assert refused.status_code == 401 and "Application API Key" in refused.json()["message"]
    app = httpx.AsyncClient(transport=httpx.ASGITransport(fake.app), base_url="https://api.housecallpro.com",
                            headers={"Authorization": f"Token {APP_KEY}"})
    assert (await app.put(f"/jobs/{job['id']}/dispatch", json={"dispatched_employees": []})).status_code == 200
    assert (await app.get(f"/jobs/{job['id']}/appointments")).status_code == 401  # a Company API Key's operation
    assert (await pro.http.get(f"/jobs/{job['id']}/appointments")).status_code == 200


async def test_a_job_with_more_than_one_appointment_is_rescheduled_through_its_appointments_only() -> None:
    fake = FakeHousecallPro()
    pro = Pro(fake)
    job = await pro.scheduled_job()
    path = f"/jobs/{job['id']}/appointments"
    assert (await pro.http.post(path, json={"start_time": at(TUESDAY, 9), "end_time": at(TUESDAY, 11)})).json()[
        "dispatched_employees_ids"] == "is required"
    second = await pro.http.post(path, json={"start_time": at(TUESDAY, 9), "end_time": at(TUESDAY, 11),
                                             "dispatched_employees_ids": [pro.dana], "arrival_window_minutes": 30})
    assert second.status_code == 201
    listed = (await pro.http.get(path)).json()["appointments"]
    assert len(listed) == 2
    refused = await pro.http.put(f"/jobs/{job['id']}/schedule", json={"start_time": at(TUESDAY, 13)})
    assert refused.status_code == 422 and "appointment" in refused.json()["error"]["message"]
    moved = await pro.http.put(f"{path}/{second.json()['id']}", json={
        "start_time": at(TUESDAY, 13), "end_time": at(TUESDAY, 15), "dispatched_employees_ids": [pro.dana]})
    assert moved.json()["start_time"] == (await pro.http.get(path)).json()["appointments"][1]["start_time"]
    read = (await pro.http.get(f"/jobs/{job['id']}", params={"expand[]": "appointments"})).json()
    assert len(read["schedule"]["appointments"]) == 2 and read["schedule"]["scheduled_end"] == moved.json()["end_time"]
    for appointment in listed:
        assert (await pro.http.delete(f"{path}/{appointment['id']}")).status_code == 200
    assert (await pro.http.get(f"/jobs/{job['id']}")).json()["work_status"] == "needs scheduling"


async def test_no_operation_starts_completes_or_cancels_a_job_only_the_app_does() -> None:
    fake = FakeHousecallPro()
    pro = Pro(fake)
    job = await pro.scheduled_job()
    for method, path in (("PUT", f"/jobs/{job['id']}"), ("PATCH", f"/jobs/{job['id']}"),
                         ("POST", f"/jobs/{job['id']}/cancel"), ("PUT", f"/jobs/{job['id']}/complete")):
        answer = await pro.http.request(method, path, json={"work_status": "pro canceled"})
        assert answer.status_code in (404, 405)
    fake.start(job["id"])
    read = (await pro.http.get(f"/jobs/{job['id']}")).json()
    assert read["work_status"] == "in progress" and read["work_timestamps"]["started_at"]
    fake.complete(job["id"])
    done = (await pro.http.get("/jobs", params={"work_status[]": "completed"})).json()["jobs"]
    assert [j["id"] for j in done] == [job["id"]] and done[0]["work_status"] == "complete unrated"
    other = await pro.scheduled_job()
    fake.cancel(other["id"], by_customer=True)
    canceled = (await pro.http.get(f"/jobs/{other['id']}")).json()
    assert canceled["work_status"] == "user canceled" and canceled["canceled_at"] and canceled["deleted_at"] is None
    assert [j["id"] for j in (await pro.http.get("/jobs", params={"work_status": "canceled"})).json()["jobs"]] == [
        other["id"]]


async def test_line_items_are_in_cents_with_at_most_two_decimals_of_quantity_and_make_the_job_total() -> None:
    pro = Pro(FakeHousecallPro())
    job = await pro.scheduled_job()
    path = f"/jobs/{job['id']}/line_items"
    assert (await pro.http.post(path, json={"unit_price": 100})).json()["name"] == "is required"
    assert (await pro.http.post(path, json={"name": "Labor", "unit_price": 99.5})).status_code == 400
    assert (await pro.http.post(path, json={"name": "Labor", "quantity": 1.125})).status_code == 400
    made = await pro.http.post(path, json={"name": "Labor", "unit_price": 12500, "quantity": 1.5, "kind": "labor"})
    assert made.status_code == 201 and made.json()["amount"] == 18750
    filter_ = await pro.http.post(path, json={"name": "Filter", "unit_price": 2499, "kind": "materials"})
    read = (await pro.http.get(f"/jobs/{job['id']}")).json()
    assert read["subtotal"] == read["total_amount"] == 18750 + 2499
    changed = await pro.http.put(f"{path}/{filter_.json()['id']}", json={"name": "Filter", "unit_price": 2999})
    assert changed.json()["amount"] == 2999
    assert (await pro.http.delete(f"{path}/{filter_.json()['id']}")).json() == {"id": filter_.json()["id"], "deleted": True}
    assert (await pro.http.delete(f"{path}/{filter_.json()['id']}")).status_code == 404
    assert [i["name"] for i in (await pro.http.get(path)).json()["data"]] == ["Labor"]


async def test_a_bulk_update_replaces_the_items_so_sending_it_twice_leaves_one_set() -> None:
    pro = Pro(FakeHousecallPro())
    job = await pro.scheduled_job()
    path = f"/jobs/{job['id']}/line_items"
    wanted = {"line_items": [{"name": "Labor", "unit_price": 12500}, {"name": "Filter", "unit_price": 2499}]}
    first = await pro.http.put(f"{path}/bulk_update", json=wanted)
    again = await pro.http.put(f"{path}/bulk_update", json=wanted)
    assert [i["name"] for i in again.json()["data"]] == ["Labor", "Filter"]
    assert {i["id"] for i in again.json()["data"]}.isdisjoint({i["id"] for i in first.json()["data"]})
    appended = await pro.http.put(f"{path}/bulk_update", json={"append_line_items": True, "line_items": [
        {"name": "Trip", "unit_price": 4900}]})
    assert [i["name"] for i in appended.json()["data"]] == ["Labor", "Filter", "Trip"]
    labor = appended.json()["data"][0]["id"]
    kept = await pro.http.put(f"{path}/bulk_update", json={"line_items": [{"id": labor, "name": "Labor", "unit_price": 15000}]})
    assert [(i["id"], i["unit_price"]) for i in kept.json()["data"]] == [(labor, 15000)]
    assert (await pro.http.put(f"{path}/bulk_update", json={"line_items": [{"id": "li_other", "name": "X"}]})).status_code == 400


async def test_adding_line_items_one_by_one_is_rate_limited_and_the_429_holds_the_company() -> None:
    fake = FakeHousecallPro(line_items_per_minute=2)
    pro = Pro(fake)
    job = await pro.scheduled_job()
    path = f"/jobs/{job['id']}/line_items"
    codes = [(await pro.http.post(path, json={"name": f"Part {n}"})).status_code for n in range(3)]
    assert codes == [201, 201, 429] and fake.writes["line_item"] == 2 and fake.count_429 == 1
    fake.clock.advance(timedelta(seconds=1))
    await pro.http.get("/employees")
    assert fake.inside_hold == 1
    fake.clock.advance(timedelta(seconds=60))
    assert (await pro.http.post(path, json={"name": "Part 3"})).status_code == 201


async def test_invoices_are_only_read_through_the_api() -> None:
    fake = FakeHousecallPro()
    pro = Pro(fake)
    job = await pro.scheduled_job()
    await pro.http.put(f"/jobs/{job['id']}/line_items/bulk_update", json={"line_items": [
        {"name": "Labor", "unit_price": 12500}, {"name": "Filter", "unit_price": 2499, "quantity": 2}]})
    for path in ("/invoices", f"/jobs/{job['id']}/invoices"):
        assert (await pro.http.post(path, json={"job_id": job["id"]})).status_code in (404, 405)
    assert (await pro.http.get(f"/jobs/{job['id']}/invoices")).json() == {"invoices": []}
    uuid = fake.issue_invoice(job["id"])
    invoice = (await pro.http.get(f"/api/invoices/{uuid}")).json()
    assert (invoice["amount"], invoice["due_amount"], invoice["status"], invoice["job_id"]) == (17498, 17498, "open", job["id"])
    assert [i["qty_in_hundredths"] for i in invoice["items"]] == [100, 200]
    assert invoice["invoice_number"] == job["invoice_number"]
    assert (await pro.http.get(f"/jobs/{job['id']}/invoices")).json()["invoices"][0]["id"] == uuid
    listed = await pro.http.get("/invoices", params={"customer_uuid[]": pro.customer, "status[]": "open"})
    assert [i["id"] for i in listed.json()["invoices"]] == [uuid]
    fake.pay_invoice(uuid)
    assert (await pro.http.get("/invoices", params={"status": "open"})).json()["invoices"] == []
    paid = (await pro.http.get("/invoices", params={"status": "paid", "amount_due_max": 0})).json()["invoices"]
    assert paid[0]["paid_at"] and paid[0]["payments"][0]["amount"] == 17498
    assert (await pro.http.get(f"/jobs/{job['id']}")).json()["outstanding_balance"] == 0
    assert (await pro.http.get("/api/invoices/inv_missing")).status_code == 404
    assert (await pro.http.get("/invoices", params={"status": "sent"})).status_code == 400


async def test_a_job_pipeline_moves_forward_only_and_is_empty_when_the_organisation_has_none() -> None:
    fake = FakeHousecallPro()
    pro = Pro(fake)
    job = await pro.scheduled_job()
    assert (await pro.http.get("/pipeline/statuses")).status_code == 400  # resource_type is required
    assert (await pro.http.get("/pipeline/statuses", params={"resource_type": "job"})).json()["statuses"] == []
    booked, done = fake.set_pipeline("Booked", "Done")
    move = {"resource_type": "job", "resource_id": job["id"]}
    assert (await pro.http.put("/pipeline/statuses", json={**move, "status_id": done})).json()["name"] == "Done"
    back = await pro.http.put("/pipeline/statuses", json={**move, "status_id": booked})
    assert back.status_code == 422 and fake.company.pipeline_of[job["id"]]["name"] == "Done"
    missing = await pro.http.put("/pipeline/statuses", json={**move, "resource_id": "job_missing", "status_id": done})
    assert missing.status_code == 404 and isinstance(missing.json()["error"], str)


async def test_every_request_that_arrives_while_the_company_is_held_after_a_429_is_counted() -> None:
    fake = FakeHousecallPro(Chaos(p429=1.0, retry_after="30"))
    pro = Pro(fake)
    first = await pro.http.get("/customers")
    assert first.status_code == 429 and first.headers["Retry-After"] == "30"
    fake.chaos.p429 = 0.0
    fake.clock.advance(timedelta(seconds=1))  # past the grace for answers already on their way
    assert (await pro.http.get("/employees")).status_code == 200  # a different request, inside the same hold
    assert (await pro.http.get("/jobs")).status_code == 200
    assert fake.inside_hold == 2
    fake.clock.advance(timedelta(seconds=30))
    await pro.http.get("/customers")
    assert fake.inside_hold == 2


async def test_the_company_limits_answer_429_with_retry_after_when_given() -> None:
    fake = FakeHousecallPro(per_minute=3)
    pro = Pro(fake)
    answers = [(await pro.http.get("/employees")).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429] and fake.count_429 == 1
    assert int((await pro.http.get("/employees")).headers["Retry-After"]) >= 1


async def test_a_503_does_nothing_and_a_lost_answer_comes_after_the_write() -> None:
    fake = FakeHousecallPro(Chaos(p503=1.0))
    pro = Pro(fake)
    unavailable = await pro.job(notes="fsm-mcp:key-0004")
    assert unavailable.status_code == 503 and not fake.company.jobs and fake.writes["job"] == 0
    fake.chaos.p503, fake.chaos.p_lost = 0.0, 1.0
    assert (await pro.http.get("/employees")).status_code == 200  # reads are never lost
    lost = await pro.job(notes="fsm-mcp:key-0004")
    assert lost.status_code == 504 and len(fake.company.jobs) == 1 and fake.lost == 1


async def test_slow_answers_take_at_least_the_latency() -> None:
    fake = FakeHousecallPro(Chaos(latency=0.05))
    pro = Pro(fake)
    with anyio.fail_after(5):
        start = anyio.current_time()
        await pro.http.get("/employees")
        assert anyio.current_time() - start >= 0.05


async def test_fields_the_spec_does_not_define_are_ignored_and_noted() -> None:
    fake = FakeHousecallPro()
    pro = Pro(fake)
    job = (await pro.job(description="Furnace repair")).json()
    assert job["description"] == "" and fake.ignored == [("job", "description")]


async def test_the_fake_answers_over_real_http_on_loopback() -> None:
    fake = FakeHousecallPro()
    Pro(fake)
    with serving(fake.app) as url:
        async with httpx.AsyncClient(base_url=url, headers=HEADERS) as http:
            assert (await http.get("/employees")).json()["total_items"] == 1


def test_the_fake_runs_standalone_and_prints_the_key_to_use() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.housecallpro", "--port", str(port), "--customers", "2"],
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert proc.stdout is not None
        key = printed_credentials(proc.stdout)["access token"]
        answer = httpx.get(f"http://127.0.0.1:{port}/customers", headers={"Authorization": f"Token {key}"}, timeout=10)
        assert answer.json()["total_items"] == 2
    finally:
        proc.terminate()
        proc.wait(timeout=10)
