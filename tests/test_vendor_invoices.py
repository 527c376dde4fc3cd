"""Vendor invoices and payments: an invoice billed, or a payment recorded, in the vendor's own app is seen by
the poll over real loopback HTTP to the fake and recorded in the outbox once (`invoice.created`,
`payment.received`), however often, late or out of order it is read; and a job the vendor has invoiced already
gets no second invoice from the automation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest

from fsm_mcp.connectors.servicetitan.backend import ServiceTitanBackend
from fsm_mcp.events import outbox
from fsm_mcp.settings import Business, Settings
from fsm_mcp.store import Store, open_store
from tests import stores
from tests.fakes.serve import serving
from tests.fakes.servicetitan import FakeServiceTitan, stamp
from tests.st_rig import BUSINESS, st_settings
from tests.vendor_rig import st_complete, st_job

pytestmark = pytest.mark.anyio
TENANT = BUSINESS.tenant_id
PRICE_LIST = {"Furnace repair": [{"description": "Furnace repair, flat rate", "quantity": "1", "unit_price": "240.00"}]}


@pytest.fixture
def st() -> Iterator[tuple[FakeServiceTitan, str, str]]:
    fake = FakeServiceTitan()
    tech = str(fake.add_technician("Dana Reyes", "HVAC; plumbing"))
    fake.add_customer("William Carter", "12 Oak St", "Springfield", "62701", phones=["(217) 555-0143"])
    with serving(fake.app) as url:
        yield fake, url, tech


def st_business(url: str, store_kind: str, tmp_path: Any, **business: Any) -> Settings:
    return Settings(db_path=stores.target(store_kind, tmp_path, "st.db"), backend="servicetitan",
                    business=Business.model_validate({**BUSINESS.model_dump(), **business}),
                    servicetitan=st_settings(api_url=url, auth_url=url))


@pytest.fixture
async def backend(st: tuple[FakeServiceTitan, str, str], tmp_path: Any, store_kind: str
                  ) -> AsyncIterator[ServiceTitanBackend]:
    settings = st_business(st[1], store_kind, tmp_path)
    db = open_store(settings.db_path)
    assert settings.servicetitan is not None
    one = ServiceTitanBackend.open(db, settings.business, settings.servicetitan)
    try:
        yield one
    finally:
        await one.aclose()
        db.close()


async def feed(db: Store, type_: str) -> list[tuple[str, dict[str, Any]]]:
    page = await outbox.read(db, TENANT, None, limit=500)
    return [(e.subject_id, e.data) for e in page.events if e.type == type_]


async def poll(backend: Any, times: int = 1) -> None:
    assert backend.changes is not None
    for _ in range(times):
        await backend.changes.run()


# ----- ServiceTitan -----

async def test_an_invoice_billed_in_servicetitans_app_is_announced_once_and_its_empty_shell_never(
        st: Any, backend: ServiceTitanBackend) -> None:
    fake, _, tech = st
    await poll(backend)  # watching before the job was made
    job_id = st_job(fake, tech)
    await poll(backend)
    assert await feed(backend.db, "invoice.created") == []  # ServiceTitan's own empty invoice is no bill
    st_complete(fake, job_id)
    invoice_id = fake.bill_in_app(job_id, ("Igniter", "2", "44.75"), ("Diagnostic", "1", "89.00"))
    await poll(backend, 3)  # and read again in the overlap of the next windows
    assert await feed(backend.db, "invoice.created") == [(str(invoice_id), {
        "invoice_id": str(invoice_id), "job_id": job_id, "customer_id": str(next(iter(fake.customers))),
        "status": "open", "total": "178.50", "balance": "178.50", "provider": "servicetitan"})]


async def test_a_payment_recorded_in_servicetitan_is_received_once_with_its_amount_and_invoice_even_after_a_restart(
        st: Any, backend: ServiceTitanBackend) -> None:
    fake, _, tech = st
    await poll(backend)
    first, second = st_job(fake, tech), st_job(fake, tech, hour=13)
    one = fake.bill_in_app(first, ("Igniter", "1", "100.00"))
    two = fake.bill_in_app(second, ("Drain", "1", "50.00"))
    await poll(backend)
    paid = fake.receive_payment((one, "60.00"), (two, "50.00"), memo="William Carter paid by card")
    await poll(backend, 2)
    reopened = ServiceTitanBackend.open(backend.db, backend.business, backend.api.settings)  # a restart
    try:
        await poll(reopened, 2)
    finally:
        await reopened.aclose()
    received = await feed(backend.db, "payment.received")
    assert received == [
        (f"servicetitan:{paid}", {"payment_id": str(paid), "invoice_id": str(one), "job_id": first, "amount": "60.00",
                                  "provider": "servicetitan"}),
        (f"servicetitan:{paid}", {"payment_id": str(paid), "invoice_id": str(two), "job_id": second, "amount": "50.00",
                                  "provider": "servicetitan"})]
    assert "Carter" not in repr(received) and "card" not in repr(received)


async def test_an_invoice_of_a_job_fsm_mcp_never_knew_is_no_event(st: Any, backend: ServiceTitanBackend) -> None:
    fake, _, tech = st
    job_id = st_job(fake, tech)
    fake.jobs[int(job_id)]["modifiedOn"] = fake.appointments[fake.jobs[int(job_id)]["firstAppointmentId"]]["modifiedOn"] \
        = "2000-01-01T00:00:00Z"  # booked long before fsm-mcp was watching, and untouched since
    await poll(backend)
    invoice_id = fake.bill_in_app(job_id, ("Igniter", "1", "10.00"))
    fake.receive_payment((invoice_id, "10.00"))
    await poll(backend, 2)
    assert await feed(backend.db, "invoice.created") == [] and await feed(backend.db, "payment.received") == []


async def test_an_invoice_committed_late_inside_the_overlap_is_still_read(st: Any, backend: ServiceTitanBackend) -> None:
    fake, _, tech = st
    await poll(backend)
    first, second = st_job(fake, tech), st_job(fake, tech, hour=13)
    one = fake.bill_in_app(first, ("Igniter", "1", "10.00"))
    await poll(backend)
    two = fake.bill_in_app(second, ("Igniter", "1", "20.00"))
    fake.invoices[two]["modifiedOn"] = fake.invoices[one]["modifiedOn"]  # committed with an earlier time
    await poll(backend)
    assert sorted(s for s, _ in await feed(backend.db, "invoice.created")) == sorted([str(one), str(two)])


async def test_a_late_or_out_of_order_reading_of_an_invoice_changes_nothing(st: Any, backend: ServiceTitanBackend) -> None:
    from datetime import UTC, datetime, timedelta

    fake, _, tech = st
    await poll(backend)
    job_id = st_job(fake, tech)
    invoice_id = fake.bill_in_app(job_id, ("Igniter", "1", "10.00"))
    await poll(backend)
    invoice = fake.invoices[invoice_id]
    billed = dict(invoice)
    # A list served by a lagging replica: the invoice as it was, empty, at an earlier time inside the window
    invoice.update(items=[], total="0.00", balance="0.00", modifiedOn=stamp(datetime.now(UTC) - timedelta(seconds=30)))
    await poll(backend)
    invoice.update(billed)  # and as it is again
    await poll(backend)
    assert [(s, d["total"]) for s, d in await feed(backend.db, "invoice.created")] == [(str(invoice_id), "10.00")]


async def test_an_invoice_read_while_fsm_mcp_fills_one_waits_and_is_read_again(
        st: Any, backend: ServiceTitanBackend) -> None:
    from fsm_mcp.connectors.servicetitan.invoices import to_model
    from fsm_mcp.results import Billed
    from fsm_mcp.services.invoicing import OPERATION, InvoiceRequest
    from fsm_mcp.store.idempotency import Attempt, IdempotentWriter

    fake, _, tech = st
    await poll(backend)
    job_id = st_job(fake, tech)
    await poll(backend)

    async def filling(_: Attempt) -> Billed:  # fsm-mcp's invoicing, adding its items one request at a time
        invoice_id = fake.bill_in_app(job_id, ("Igniter", "1", "10.00"))
        await poll(backend)  # meanwhile, the poll: the invoice may be half filled
        assert await feed(backend.db, "invoice.created") == []
        fake.bill_in_app(job_id, ("Diagnostic", "1", "89.00"))
        return Billed(invoice=to_model(fake.invoices[invoice_id], job_id, Decimal(0)), already_invoiced=False)

    await IdempotentWriter(backend.db, in_transaction=False).run(
        tenant=TENANT, actor="test", tool=OPERATION, key="k", request=InvoiceRequest(job_id=job_id, line_items=()),
        result_type=Billed, result_id=lambda b: b.invoice.invoice_id, write=filling)
    await poll(backend)
    assert [d["total"] for _, d in await feed(backend.db, "invoice.created")] == ["99.00"]


async def test_over_servicetitan_the_automation_fills_the_vendors_own_invoice_and_never_makes_a_second(
        st: Any, tmp_path: Any, store_kind: str) -> None:
    from fsm_mcp.businesses import open_businesses
    from fsm_mcp.events.automations import Automations
    from fsm_mcp.store import automations as automation_sql

    fake, url, tech = st
    settings = st_business(url, store_kind, tmp_path, price_list=PRICE_LIST, follow_up_days=0)
    db = open_store(settings.db_path)
    try:
        async with open_businesses({TENANT: settings}, db, background=False) as every:
            served = every.by_id[TENANT]
            automations = Automations(every)
            await automations.start()
            await poll(served.backend)
            billed, empty = st_job(fake, tech), st_job(fake, tech, hour=13)
            fake.bill_in_app(billed, ("Igniter", "2", "44.75"))  # the technician billed it in ServiceTitan's app
            for job_id in (billed, empty):
                st_complete(fake, job_id)
            await poll(served.backend)
            assert await automations.step() == 2
            await poll(served.backend, 2)
            await automations.step()
            outcomes = {j: (await db.aread(automation_sql.job, TENANT, j))["billed"] for j in (billed, empty)}
    finally:
        db.close()
    assert outcomes == {billed: "existing", empty: "invoiced"}
    per_job = {j: [i for i in fake.invoices.values() if i["job"]["id"] == int(j)] for j in (billed, empty)}
    assert [len(v) for v in per_job.values()] == [1, 1]
    assert per_job[billed][0]["total"] == "89.50" and per_job[empty][0]["total"] == "240.00"
    db = open_store(settings.db_path)
    try:
        created = await feed(db, "invoice.created")
    finally:
        db.close()
    assert sorted(d["job_id"] for _, d in created) == sorted([billed, empty])  # one each, the poll's or the automation's


# ----- FieldPulse and Housecall Pro -----

async def test_a_fieldpulse_invoice_and_its_payment_made_in_the_app_are_recorded_once(tmp_path: Any, store_kind: str) -> None:
    from fsm_mcp.connectors.fieldpulse.backend import FieldPulseBackend
    from tests.fakes.fieldpulse import FakeFieldPulse
    from tests.fakes.fieldpulse import connector_settings as fp_connector
    from tests.vendor_rig import fp_complete, fp_job

    fake = FakeFieldPulse()
    tech = str(fake.add_technician("Dana Reyes"))
    fake.add_customer("William Carter", "12 Oak St", "Springfield", "62701", phones=("(217) 555-0143",))
    db = open_store(stores.target(store_kind, tmp_path, "fp.db"))
    with serving(fake.app) as url:
        backend = FieldPulseBackend.open(db, BUSINESS, fp_connector(url))
        try:
            await poll(backend)
            job_id = fp_job(fake, tech)
            fp_complete(fake, job_id)
            invoice_id = fake.invoice_in_app(job_id, ("Furnace repair", "1", "240.00"))
            await poll(backend, 2)
            paid = fake.pay(invoice_id, "100.00")
            await poll(backend, 2)
            invoiced, received = await feed(db, "invoice.created"), await feed(db, "payment.received")
        finally:
            await backend.aclose()
            db.close()
    assert [(s, d["job_id"], d["total"]) for s, d in invoiced] == [(str(invoice_id), job_id, "240.00")]
    assert received == [(f"fieldpulse:{paid}", {"payment_id": str(paid), "invoice_id": str(invoice_id), "job_id": job_id,
                                                "amount": "100.00", "provider": "fieldpulse"})]


async def test_a_housecall_pro_invoice_and_its_payments_are_recorded_once(tmp_path: Any, store_kind: str) -> None:
    from fsm_mcp.connectors.housecallpro.backend import HousecallProBackend
    from tests.fakes.housecallpro import connector_settings as hcp_connector
    from tests.hcp_rig import seeded

    fake, tech = seeded()
    company = fake.company
    customer = next(iter(company.customers))
    address = next(a for a, row in company.addresses.items() if row["customer_id"] == customer)
    db = open_store(stores.target(store_kind, tmp_path, "hcp.db"))
    with serving(fake.app) as url:
        backend = HousecallProBackend.open(db, BUSINESS, hcp_connector(url))
        try:
            await poll(backend)
            job_id = str(company.create_job({"customer_id": customer, "address_id": address,
                                             "assigned_employee_ids": [tech],
                                             "line_items": [{"name": "Repair", "unit_price": 24000, "quantity": 1}]})["id"])
            await poll(backend)
            fake.complete(job_id)
            uuid = fake.issue_invoice(job_id)
            await poll(backend, 2)
            fake.pay_invoice(uuid, 4000)
            fake.pay_invoice(uuid)  # the rest: paid in full
            await poll(backend, 2)
            invoiced, received = await feed(db, "invoice.created"), await feed(db, "payment.received")
        finally:
            await backend.aclose()
            db.close()
    number = str(company.invoices[uuid]["invoice_number"])
    assert [(s, d["job_id"], d["total"], d["customer_id"]) for s, d in invoiced] == [(number, job_id, "240.00", customer)]
    assert sorted(d["amount"] for _, d in received) == ["200.00", "40.00"]
    assert {d["invoice_id"] for _, d in received} == {number}


# ----- every request of the money polls, against the published specs -----

async def test_servicetitans_invoice_and_payment_polls_follow_the_published_spec(
        st: Any, backend: ServiceTitanBackend) -> None:
    from tests import test_servicetitan_contract as contract

    if not contract.SPECS.is_dir():
        pytest.skip(f"ServiceTitan's published specs are not at {contract.SPECS}")
    fake, _, tech = st
    await poll(backend)
    job_id = st_job(fake, tech)
    await poll(backend)
    invoice_id = fake.bill_in_app(job_id, ("Igniter", "1", "10.00"))
    fake.receive_payment((invoice_id, "10.00"))
    fake.door.log.clear()
    await poll(backend)
    spec, seen = contract.Spec(), set()
    for x in fake.door.log:
        op, components = spec.find(x.method, x.path)
        seen.add(op["operationId"])
        declared = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
        assert set(x.query) <= declared, f"{x.path}: undeclared parameters {set(x.query) - declared}"
        assert not contract.broken(op, x.query), f"{x.path} {x.query}: {contract.broken(op, x.query)}"
        assert x.status == 200, (x.path, x.answer)
        schema = op["responses"]["200"]["content"]["application/json"]["schema"]
        contract.check(schema, components, x.answer, f"{x.method} {x.path} answer")
    assert {"Invoices_GetList", "Payments_GetList"} <= seen


async def test_fieldpulses_invoice_and_payment_polls_follow_the_published_spec(tmp_path: Any, store_kind: str) -> None:
    import httpx2 as httpx

    from fsm_mcp.connectors.fieldpulse.backend import FieldPulseBackend
    from tests import test_fieldpulse_contract as contract
    from tests.fakes.fieldpulse import API_KEY, FakeFieldPulse
    from tests.fakes.fieldpulse import connector_settings as fp_connector
    from tests.vendor_rig import fp_job

    if not contract.SPEC.is_file():
        pytest.skip(f"FieldPulse's published spec is not at {contract.SPEC}")
    fake = FakeFieldPulse()
    tech = str(fake.add_technician("Dana Reyes"))
    fake.add_customer("William Carter", "12 Oak St", "Springfield", "62701", phones=("(217) 555-0143",))
    db = open_store(stores.target(store_kind, tmp_path, "fp.db"))
    with serving(fake.app) as url:
        backend = FieldPulseBackend.open(db, BUSINESS, fp_connector(url))
        try:
            await poll(backend)
            fake.pay(fake.invoice_in_app(fp_job(fake, tech), ("Repair", "1", "10.00")), "10.00")
            fake.door.log.clear()
            await poll(backend)
        finally:
            await backend.aclose()
            db.close()
    spec, seen = contract.Spec(), set()
    for x in fake.door.log:
        op = spec.find(x.method, x.path)
        seen.add(op["operationId"])
        assert set(x.query) <= spec.query(op), f"{x.path}: undeclared parameters {set(x.query) - spec.query(op)}"
        assert not contract.broken(spec, op, x.query), f"{x.path} {x.query}: {contract.broken(spec, op, x.query)}"
        assert str(x.status) in op["responses"] and x.status == 200, (x.path, x.answer)
    assert {"getInvoices", "getPayments"} <= seen
    payments = spec.find("GET", "/payments")
    assert contract.prose_rules(spec, payments)["sort_by"] == {"cuid", "method", "amount", "payment_date"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(fake.app), base_url="http://fp.test",
                                 headers={"x-api-key": API_KEY}) as http:
        assert contract.broken(spec, payments, {"sort_by": "updated_at"})
        assert (await http.get("/payments", params={"sort_by": "updated_at"})).status_code == 400  # as the fake holds to it


async def test_housecall_pros_invoice_poll_follows_the_published_spec(tmp_path: Any, store_kind: str) -> None:
    from fsm_mcp.connectors.housecallpro.backend import HousecallProBackend
    from tests import test_housecallpro_contract as contract
    from tests.fakes.housecallpro import connector_settings as hcp_connector
    from tests.hcp_rig import seeded

    if not contract.SPEC.is_file():
        pytest.skip(f"Housecall Pro's published spec is not at {contract.SPEC}")
    fake, _ = seeded()
    db = open_store(stores.target(store_kind, tmp_path, "hcp.db"))
    with serving(fake.app) as url:
        backend = HousecallProBackend.open(db, BUSINESS, hcp_connector(url))
        try:
            fake.door.log.clear()
            await poll(backend)
        finally:
            await backend.aclose()
            db.close()
    spec = contract.Spec()
    invoices = [x for x in fake.door.log if x.path == "/invoices"]
    assert {k for x in invoices for k in x.query} >= {"created_at_min", "paid_at_min", "sort_by"}
    for x in invoices:
        _, op, shared = spec.find(x.method, x.path)
        names = {k.removesuffix("[]") for k in x.query}
        assert names <= contract.query_names(op, shared), names - contract.query_names(op, shared)
        enums = {p["name"]: p["schema"].get("enum") for p in op["parameters"] if p["schema"].get("enum")}
        for name, allowed in enums.items():
            assert name not in x.query or x.query[name] in allowed, (name, x.query[name])
        assert x.status == 200, x.answer


async def test_over_fieldpulse_a_job_invoiced_in_the_app_first_gets_no_second_invoice_from_the_automation(
        tmp_path: Any, store_kind: str) -> None:
    from fsm_mcp.businesses import open_businesses
    from fsm_mcp.events.automations import Automations
    from fsm_mcp.store import automations as automation_sql
    from tests.fakes.fieldpulse import FakeFieldPulse
    from tests.fakes.fieldpulse import connector_settings as fp_connector
    from tests.vendor_rig import fp_complete, fp_job

    fake = FakeFieldPulse()
    tech = str(fake.add_technician("Dana Reyes"))
    fake.add_customer("William Carter", "12 Oak St", "Springfield", "62701", phones=("(217) 555-0143",))
    with serving(fake.app) as url:
        settings = Settings(db_path=stores.target(store_kind, tmp_path, "fp.db"), backend="fieldpulse",
                            business=Business.model_validate({**BUSINESS.model_dump(), "price_list": PRICE_LIST,
                                                              "follow_up_days": 0}),
                            fieldpulse=fp_connector(url))
        db = open_store(settings.db_path)
        try:
            async with open_businesses({TENANT: settings}, db, background=False) as every:
                served = every.by_id[TENANT]
                automations = Automations(every)
                await automations.start()
                await poll(served.backend)
                job_id = fp_job(fake, tech)
                invoice_id = fake.invoice_in_app(job_id, ("Furnace repair, discounted", "1", "200.00"))
                fp_complete(fake, job_id)
                await poll(served.backend, 2)
                assert await automations.step() == 1
                assert (await db.aread(automation_sql.job, TENANT, job_id))["billed"] == "existing"
                created = await feed(db, "invoice.created")
        finally:
            db.close()
    assert [i["id"] for i in fake.invoices.values() if str(i["job_id"]) == job_id] == [invoice_id]
    assert [(s, d["total"]) for s, d in created] == [(str(invoice_id), "200.00")]
