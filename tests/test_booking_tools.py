"""The booking lifecycle through the real MCP client, in-process, on a real SQLite file."""

from typing import Any

import anyio
import pytest
from mcp import Client

from fsm_mcp.server import build_server
from fsm_mcp.settings import Settings
from fsm_mcp.store import open_store
from tests.conftest import MONDAY_9, NEW_CALLER, call, count, fail
from tests.when import MONDAY, TUESDAY, at, iso, window

pytestmark = pytest.mark.anyio


async def book(client: Client, key: str = "k-1", **overrides: Any) -> dict[str, Any]:
    args = {"customer": NEW_CALLER, "job_type": "hvac", "summary": "AC grinding noise", "idempotency_key": key, **MONDAY_9}
    return await call(client, "create_job", **{**args, **overrides})


async def test_a_new_caller_is_booked_and_recognised_next_time(client: Client) -> None:
    job = await book(client)
    assert job["customer_created"] is True and job["status"] == "scheduled"
    assert job["window_start"] == iso(MONDAY, 9)  # the business's local time
    found = await call(client, "lookup_customer", phone="312.555.0188")
    assert found["matches"][0]["customer_id"] == job["customer_id"]
    assert found["matches"][0]["confidence"] in ("exact", "likely")
    assert found["customer"]["recent_jobs"][0]["job_id"] == job["job_id"]


async def test_booking_with_details_of_a_known_customer_attaches_to_them(client: Client) -> None:
    first = await book(client)
    second = await book(client, key="k-2", customer={**NEW_CALLER, "phone": "+1 312 555 0188"},
                        **window(TUESDAY, 9))
    assert second["customer_id"] == first["customer_id"] and second["customer_created"] is False


async def test_ambiguous_caller_details_are_refused_with_the_candidates(client: Client, settings: Settings) -> None:
    a = await book(client, key="a", customer={"name": "John Smith", "address": "5 Pine Rd"})
    b = await book(client, key="b", customer={"name": "Jon Smith", "address": "7 Cedar Ln"}, new_customer=True)
    jobs_before = count(settings, "jobs")
    message = await fail(client, "create_job", customer={"name": "John Smith"}, job_type="plumbing", summary="leak",
                         idempotency_key="c", **MONDAY_9)
    assert a["customer_id"] in message and "customer_id" in message and "Ask the caller" in message
    assert b["customer_id"] != a["customer_id"]
    assert count(settings, "jobs") == jobs_before


async def test_the_same_key_returns_the_first_job_without_writing_again(client: Client, settings: Settings) -> None:
    first = await book(client)
    again = await book(client)
    assert again == first
    assert count(settings, "jobs") == 1 and count(settings, "customers") == 1


async def test_the_same_key_with_other_arguments_is_refused(client: Client, settings: Settings) -> None:
    await book(client)
    message = await fail(client, "create_job", customer=NEW_CALLER, job_type="plumbing", summary="other",
                         idempotency_key="k-1", **MONDAY_9)
    assert message.startswith("Error executing tool create_job: idempotency_key:")
    assert count(settings, "jobs") == 1


async def test_concurrent_calls_with_one_key_create_one_job(client: Client, settings: Settings) -> None:
    results: list[dict[str, Any]] = []

    async def one() -> None:
        results.append(await book(client))

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(one)
    assert len({r["job_id"] for r in results}) == 1
    assert count(settings, "jobs") == 1 and count(settings, "customers") == 1


async def test_a_retry_after_a_restart_returns_the_original_job(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        first = await book(client)
    async with Client(build_server(settings)) as client:
        again = await book(client)
    assert again["job_id"] == first["job_id"]
    assert count(settings, "jobs") == 1


async def test_a_regenerated_key_for_the_same_booking_returns_the_existing_job(client: Client, settings: Settings) -> None:
    first = await book(client)
    second = await book(client, key="regenerated", **window(MONDAY, 10))
    assert second["already_booked"] is True and second["job_id"] == first["job_id"]
    third = await book(client, key="on-purpose", allow_duplicate=True)
    assert third["already_booked"] is False and third["job_id"] != first["job_id"]
    assert count(settings, "jobs") == 2


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"window_start": at(MONDAY, 11), "window_end": at(MONDAY, 9)}, "window_end"),
        ({"customer": {**NEW_CALLER, "phone": "555"}}, "customer.phone"),
        ({"customer": {**NEW_CALLER, "email": "nope"}}, "customer.email"),
        ({"customer_id": "cus_missing", "customer": None}, "customer_id"),
        ({"customer": {"name": "Nobody New"}}, "address"),
        ({"job_type": "   "}, "job_type"),
    ],
)
async def test_bad_booking_input_names_the_field_and_writes_nothing(
    client: Client, settings: Settings, overrides: dict[str, Any], field: str
) -> None:
    args = {"customer": NEW_CALLER, "job_type": "hvac", "summary": "noise", "idempotency_key": "bad", **MONDAY_9}
    args.update(overrides)
    message = await fail(client, "create_job", **{k: v for k, v in args.items() if v is not None})
    assert f"{field}:" in message
    assert count(settings, "jobs") == 0 and count(settings, "customers") == 0 and count(settings, "idempotency") == 0
    assert (await call(client, "list_technicians"))["technicians"] == []  # still serving


async def test_lookup_needs_something_to_search_by(client: Client) -> None:
    assert "phone:" in await fail(client, "lookup_customer")
    assert "phone:" in await fail(client, "lookup_customer", phone="12")


async def test_out_of_range_arguments_are_tool_errors(client: Client) -> None:
    message = await fail(client, "lookup_customer", phone="217-555-0143", limit=500)
    assert "limit" in message


async def test_a_returning_caller_comes_with_a_card_the_agent_can_read_out(settings: Settings) -> None:
    from fsm_mcp.demo import seed
    from tests.conftest import BUSINESS

    db = open_store(settings.db_path)
    seed(db, BUSINESS)
    db.close()
    async with Client(build_server(settings)) as client:
        card = (await call(client, "lookup_customer", phone="+1 217 555 0143"))["customer"]
    assert card["name"] == "William Jenkins" and card["phones"] == ["+12175550143"]
    home = card["locations"][0]
    assert home["address"] == "123 Oak Street, Springfield, IL 62704"
    assert home["equipment"] == ["Carrier 59TP6 furnace, installed 2014"]
    assert "gate code 4417" in home["access_notes"]
    assert card["recent_jobs"][0]["outcome"] == "Flame sensor replaced" and card["open_balance"] == "0.00"


async def test_a_lookup_leaves_out_what_holds_nothing_but_keeps_what_is_required(client: Client) -> None:
    nobody = await call(client, "lookup_customer", phone="(217) 555-0100")
    assert nobody["matches"] == [] and "customer" not in nobody and "No customer" in nobody["next_step"]
    await book(client)
    card = (await call(client, "lookup_customer", phone="312.555.0188"))["customer"]
    assert "notes" not in card and card["emails"] == []  # optional and empty: out; required: always there
    place = card["locations"][0]
    assert "access_notes" not in place and "equipment" not in place and place["address"]


async def test_a_known_customer_calling_from_a_new_number_is_recognised_by_it_next_time(client: Client) -> None:
    first = await book(client)
    assert (await call(client, "lookup_customer", phone="(217) 555-0199"))["matches"] == []
    second = await book(client, key="k-2", customer=None, customer_id=first["customer_id"], caller_phone="217.555.0199",
                        **window(TUESDAY, 9))
    assert second["contacts_added"] == ["+12175550199"]
    found = await call(client, "lookup_customer", phone="(217) 555-0199")
    assert found["matches"][0]["customer_id"] == first["customer_id"]
    assert found["matches"][0]["confidence"] in ("exact", "likely")


async def test_a_caller_attached_by_name_and_address_brings_their_new_number_and_email(client: Client) -> None:
    first = await book(client)
    details = {**NEW_CALLER, "phone": "773-555-0123", "email": "maria@example.com"}
    second = await book(client, key="k-2", customer=details, **window(TUESDAY, 9))
    assert second["customer_id"] == first["customer_id"]
    assert second["contacts_added"] == ["+17735550123", "maria@example.com"]
    card = await call(client, "get_customer", customer_id=first["customer_id"])
    assert {p["number"] for p in card["customer"]["phones"]} == {"+13125550188", "+17735550123"}


async def test_a_bad_caller_id_names_the_field_and_books_nothing(client: Client, settings: Settings) -> None:
    message = await fail(client, "create_job", customer=NEW_CALLER, job_type="hvac", summary="x", idempotency_key="k",
                         caller_phone="12", **MONDAY_9)
    assert "caller_phone" in message and count(settings, "jobs") == 0
