"""The services with no MCP at all: an automation acting as a named system actor, and the
idempotency key bound to every field of every write's request model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from fsm_mcp.businesses import ServedBusiness, open_businesses
from fsm_mcp.clock import Clock
from fsm_mcp.errors import IdempotencyMismatch
from fsm_mcp.inputs import AddressIn, BookingRequest, CustomerDetails, LineItemIn
from fsm_mcp.models import JobStatus
from fsm_mcp.services import booking, dispatch, invoicing, merge, statuses
from fsm_mcp.services.actors import system_actor
from fsm_mcp.services.dispatch import DispatchRequest
from fsm_mcp.services.invoicing import InvoiceRequest
from fsm_mcp.services.merge import MergeRequest
from fsm_mcp.services.statuses import StatusMove
from fsm_mcp.settings import Settings
from fsm_mcp.store import open_store
from tests import stores
from tests.conftest import BUSINESS

pytestmark = pytest.mark.anyio

AUTOMATION = system_actor("automation-x")


def next_monday_at(hour: int, weeks: int = 1) -> datetime:
    """A weekday morning some weeks from the real today, in the business's zone (no calendar date written)."""
    today = Clock().today(BUSINESS.zone)
    monday = today + timedelta(days=7 * weeks - today.weekday())
    return datetime(monday.year, monday.month, monday.day, hour, tzinfo=BUSINESS.zone)


def new_caller(name: str = "Maria Garcia", phone: str = "(312) 555-0188", street: str = "410 Maple Dr",
               weeks: int = 1) -> BookingRequest:
    address = AddressIn(street=street, city="Springfield", state="IL", postal_code="62704")
    start = next_monday_at(9, weeks)
    return BookingRequest(customer_id=None, customer=CustomerDetails(name=name, phone=phone), address=address,
                          job_type="hvac", summary="no heat", priority="normal", window=(start, start + timedelta(hours=2)),
                          technician_id=None, allow_duplicate=False, new_customer=False)


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[ServedBusiness]:
    db = open_store(settings.db_path)
    try:
        async with open_businesses({BUSINESS.tenant_id: settings}, db) as businesses:
            yield businesses.by_id[BUSINESS.tenant_id]
    finally:
        db.close()


def rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    conn = stores.connect(settings.db_path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_an_automation_books_dispatches_and_invoices_with_no_mcp_and_the_audit_log_names_it(
    served: ServedBusiness, settings: Settings, add_technician: Callable[..., str]
) -> None:
    tech = add_technician("Maria Lopez", ["hvac"])
    booked = await booking.book(served, AUTOMATION, "b1", new_caller())
    job_id = booked.job.job_id
    await dispatch.dispatch(served, AUTOMATION, "d1", DispatchRequest(job_id=job_id, technician_id=tech))
    for status in (JobStatus.en_route, JobStatus.arrived, JobStatus.working, JobStatus.completed):
        await statuses.move(served, AUTOMATION, None, StatusMove(job_id=job_id, status=status))
    lines = (LineItemIn(description="Diagnostic", quantity=Decimal("1"), unit_price=Decimal("89.00")),)
    billed = await invoicing.invoice(served, AUTOMATION, "i1", InvoiceRequest(job_id=job_id, line_items=lines))
    assert billed.invoice.total == Decimal("89.00") and not billed.already_invoiced
    audit = rows(settings, "SELECT tool, actor FROM audit_log ORDER BY id")
    assert [tool for tool, _ in audit] == ["create_job", "dispatch_technician", *["update_job_status"] * 4,
                                           "create_invoice"]
    assert {actor for _, actor in audit} == {"system:automation-x"}


def changed(value: Any, name: str, alternatives: dict[str, Any]) -> Any:
    """Another value of the same field: every field of a request must count."""
    if name in alternatives:
        return alternatives[name]
    if isinstance(value, bool):
        return not value
    if isinstance(value, str):
        return value + "-other"
    if isinstance(value, Decimal):
        return value + Decimal("0.01")
    if isinstance(value, tuple) and value and isinstance(value[0], datetime):
        return tuple(moment + timedelta(hours=1) for moment in value)
    if isinstance(value, tuple):
        return (*value, value[0]) if value else ("other",)
    raise AssertionError(f"no other value known for {name}={value!r}: add one to the test's alternatives")


async def refuses_every_changed_field(send: Callable[[BaseModel], Any], request: BaseModel,
                                      alternatives: dict[str, Any]) -> list[str]:
    first = await send(request)
    assert await send(request) == first  # the unchanged retry replays, so the refusals below are the change's doing
    refused = []
    for name in type(request).model_fields:
        other = request.model_copy(update={name: changed(getattr(request, name), name, alternatives)})
        assert other != request, name
        with pytest.raises(IdempotencyMismatch, match="already used"):
            await send(other)
        refused.append(name)
    return refused


async def test_a_retry_with_any_one_field_changed_is_refused_as_a_key_reuse_for_every_write(
    served: ServedBusiness, settings: Settings, add_technician: Callable[..., str]
) -> None:
    tech = add_technician("Maria Lopez", ["hvac"])
    other_tech = add_technician("Sam Ortiz", ["hvac"])
    address = AddressIn(street="12 Oak St", city="Springfield", postal_code="62704")

    book = new_caller()
    refused = await refuses_every_changed_field(
        lambda r: booking.book(served, AUTOMATION, "book", r), book,
        {"customer_id": "cus_other", "technician_id": tech, "caller_phone": "+13125550199", "address": address,
         "customer": CustomerDetails(name="Maria Garcia", phone="(312) 555-0177"), "priority": "high"})
    assert set(refused) == set(BookingRequest.model_fields)
    job_id = (await booking.book(served, AUTOMATION, "book", book)).job.job_id
    customer_id = (await booking.book(served, AUTOMATION, "book", book)).job.customer_id

    window = next_monday_at(13), next_monday_at(15)
    await refuses_every_changed_field(
        lambda r: dispatch.dispatch(served, AUTOMATION, "dispatch", r),
        DispatchRequest(job_id=job_id, technician_id=tech, window=window), {"technician_id": other_tech})

    await refuses_every_changed_field(
        lambda r: statuses.move(served, AUTOMATION, "move", r),
        StatusMove(job_id=job_id, status=JobStatus.en_route, note="on the way"),
        {"status": JobStatus.on_hold,
         "lines": (LineItemIn(description="Diagnostic", quantity=Decimal("1"), unit_price=Decimal("89.00")),)})

    for status in (JobStatus.arrived, JobStatus.working, JobStatus.completed):
        await statuses.move(served, AUTOMATION, None, StatusMove(job_id=job_id, status=status))
    lines = (LineItemIn(description="Diagnostic", quantity=Decimal("1"), unit_price=Decimal("89.00")),)
    await refuses_every_changed_field(
        lambda r: invoicing.invoice(served, AUTOMATION, "invoice", r),
        InvoiceRequest(job_id=job_id, line_items=lines, tax_rate=Decimal("0.05"), discount=Decimal("1")), {})

    twin = (await booking.book(served, AUTOMATION, "twin", new_caller("Tom Baker", "(312) 555-0100", "9 Elm St",
                                                                     weeks=2))).job.customer_id
    asked = MergeRequest(keep_id=customer_id, merge_ids=(twin,))
    preview = await merge.merge(served, AUTOMATION, "merge", asked, None)
    assert preview.pending is not None
    token = preview.pending.token
    await refuses_every_changed_field(lambda r: merge.merge(served, AUTOMATION, "merge", r, token), asked,
                                      {"keep_id": twin, "merge_ids": (customer_id,)})
    assert rows(settings, "SELECT count(*) FROM jobs") == [(2,)] and rows(settings, "SELECT count(*) FROM invoices") == [(1,)]


async def test_a_system_actor_is_named_as_one_and_cannot_pass_for_a_caller() -> None:
    assert system_actor("nightly-invoices") == "system:nightly-invoices"
    with pytest.raises(ValueError, match="letters, digits"):
        system_actor("key:voice-bot")
