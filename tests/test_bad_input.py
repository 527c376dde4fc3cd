"""A hostile corpus: malformed, oversized, out-of-range, foreign and booby-trapped calls across every
tool. Each comes back as a tool error that names the field in plain words, writes nothing, and
leaves the server serving."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from mcp import Client

from fsm_mcp.server import build_server
from fsm_mcp.settings import Settings
from tests import stores
from tests.conftest import BUSINESS, MONDAY_9, NEW_CALLER, call, fail
from tests.when import MONDAY, TUESDAY, at, day, window

pytestmark = pytest.mark.anyio
LIBRARY_TALK = ("pydantic", "validation error for", "http", "Arguments", "[type=", "input_value", "Traceback",
                "sqlite", "Error executing tool Error", "AddressIn", "AgentAddress", "CustomerDetails", "LineItemIn", "function-after",
                "ValueError", "OverflowError", "out of range for")
TABLES = ("customers", "customer_phones", "locations", "jobs", "job_events", "job_technicians", "invoices",
          "idempotency", "audit_log", "confirmations", "technicians")
BOOK = {"customer": NEW_CALLER, "job_type": "hvac", "summary": "no heat", "idempotency_key": "k", **MONDAY_9}
LINE = {"description": "Labor", "kind": "labor", "quantity": "1", "unit_price": "95"}
SQL = "'; DROP TABLE jobs; --"
TEMPLATE = "{{7*7}}${jndi:ldap://x}"
LOOKALIKE = "\u0458ob_0001"  # starts with a Cyrillic je, which looks like "j"
MB = "x" * 1_000_000
ANSI = "\x1b[2J\x1b[31m"  # clear the screen, then red
RLO = "\u202e"  # right-to-left override: "Ann\u202eeeL" shows as "AnnLee"
WHERE = {"street": "1 Oak St", "city": "Springfield"}

# (tool, arguments, field named, words said). JOB, CUSTOMER, TECH and OTHER_* are filled from the seeded base.
CORPUS: list[tuple[str, dict[str, Any], str, str]] = [
    # wrong types and missing fields
    ("update_job_status", {"job_id": 5, "status": "completed"}, "job_id", "must be text"),
    ("update_job_status", {"status": "completed"}, "job_id", "is required"),
    ("get_customer", {"customer_id": ["a"]}, "customer_id", "must be text"),
    ("get_job", {}, "job_id", "is required"),
    ("list_jobs", {"limit": "many"}, "limit", "whole number"),
    ("create_job", {**BOOK, "allow_duplicate": "perhaps"}, "allow_duplicate", "true or false"),
    ("create_job", {**BOOK, "window_start": "tomorrow at nine"}, "window_start", "ISO 8601"),
    ("create_job", {**BOOK, "customer": "Maria"}, "customer", "named fields"),
    ("merge_customers", {"keep_id": "a", "merge_ids": "b", "idempotency_key": "k"}, "merge_ids", "must be a list"),
    ("find_available_slots", {"job_type": "hvac", "date_from": f"{MONDAY.year}-13-01"}, "date_from", "must be a date"),
    ("create_invoice", {"job_id": "JOB", "idempotency_key": "k", "line_items": {"a": 1}}, "line_items", "must be a list"),
    ("create_job", {**BOOK, "make_me_admin": True}, "make_me_admin", "not an argument"),
    # empty and blank
    ("create_job", {**BOOK, "customer": {"name": ""}}, "customer.name", "ask the caller for their name"),
    ("create_job", {**BOOK, "customer": {**NEW_CALLER, "name": "   "}}, "customer.name", "ask the caller for their name"),
    ("create_job", {**BOOK, "customer": {**NEW_CALLER, "name": "?"}}, "customer.name", "ask the caller for their name"),
    ("create_job", {**BOOK, "customer": {**NEW_CALLER, "name": " - "}}, "customer.name", "ask the caller for their name"),
    ("create_job", {**BOOK, "job_type": ""}, "job_type", "must not be empty"),
    ("create_job", {**BOOK, "summary": "   "}, "summary", "must not be blank"),
    ("get_customer", {"customer_id": ""}, "customer_id", "must not be empty"),
    ("lookup_customer", {}, "phone", "give at least one"),
    ("lookup_customer", {"name": "   "}, "phone", "give at least one"),
    ("create_invoice", {"job_id": "JOB", "idempotency_key": "k", "line_items": [{**LINE, "description": ""}]},
     "line_items.0.description", "must not be empty"),
    ("create_job", {**BOOK, "idempotency_key": ""}, "idempotency_key", "must not be empty"),
    ("cancel_job", {"job_id": "JOB", "confirmation_token": ""}, "confirmation_token", "must not be empty"),
    # too long, too many
    ("create_job", {**BOOK, "summary": "x" * 3000}, "summary", "at most 2000 characters"),
    ("update_job_status", {"job_id": "JOB", "status": "on_hold", "note": MB}, "note", "at most 2000"),
    ("cancel_job", {"job_id": "JOB", "reason": MB}, "reason", "at most 2000"),
    ("lookup_customer", {"phone": "5" * 41}, "phone", "at most 40"),
    ("lookup_customer", {"name": MB}, "name", "at most 200"),
    ("get_job", {"job_id": "j" * 65}, "job_id", "at most 64"),
    ("create_job", {**BOOK, "idempotency_key": "k" * 256}, "idempotency_key", "at most 255"),
    ("merge_customers", {"keep_id": "CUSTOMER", "merge_ids": [f"c{i}" for i in range(21)], "idempotency_key": "k"},
     "merge_ids", "at most 20"),
    ("merge_customers", {"keep_id": "CUSTOMER", "merge_ids": [], "idempotency_key": "k"}, "merge_ids", "at least 1"),
    ("create_invoice", {"job_id": "JOB", "idempotency_key": "k", "line_items": [LINE] * 201}, "line_items", "at most 200"),
    ("create_invoice", {"job_id": "JOB", "idempotency_key": "k", "line_items": []}, "line_items", "at least 1"),
    ("list_technicians", {"skill": "s" * 101}, "skill", "at most 100"),
    # numbers out of range
    ("create_invoice", {"job_id": "JOB", "idempotency_key": "k", "line_items": [{**LINE, "quantity": -1}]},
     "line_items.0.quantity", "must be more than 0"),
    ("create_invoice", {"job_id": "JOB", "idempotency_key": "k", "line_items": [{**LINE, "quantity": "1e12"}]},
     "line_items.0.quantity", "at most 10000"),
    ("create_invoice", {"job_id": "JOB", "idempotency_key": "k", "line_items": [{**LINE, "unit_price": "-5"}]},
     "line_items.0.unit_price", "at least 0"),
    ("create_invoice", {"job_id": "JOB", "idempotency_key": "k", "tax_rate": "0.5", "line_items": [LINE]},
     "tax_rate", "at most 0.30"),
    ("create_invoice", {"job_id": "JOB", "idempotency_key": "k", "discount": "-10", "line_items": [LINE]},
     "discount", "at least 0"),
    ("find_available_slots", {"job_type": "hvac", "date_from": MONDAY.isoformat(), "duration_minutes": 5},
     "duration_minutes", "at least 15"),
    ("find_available_slots", {"job_type": "hvac", "date_from": MONDAY.isoformat(), "duration_minutes": 100000},
     "duration_minutes", "at most 720"),
    ("list_jobs", {"limit": 100000}, "limit", "at most 200"),
    ("list_jobs", {"limit": -1}, "limit", "at least 1"),
    ("lookup_customer", {"phone": "2175550143", "limit": 0}, "limit", "at least 1"),
    ("find_duplicate_customers", {"limit": 0}, "limit", "at least 1"),
    # choices
    ("update_job_status", {"job_id": "JOB", "status": "done"}, "status", "must be one of"),
    ("create_job", {**BOOK, "priority": "asap"}, "priority", "must be one of"),
    ("list_jobs", {"status": ["exploded"]}, "status.0", "must be one of"),
    ("find_duplicate_customers", {"min_confidence": "maybe"}, "min_confidence", "must be one of"),
    # windows and dates
    ("create_job", {**BOOK, "window_end": at(MONDAY, 8)}, "window_end", "must be after window_start"),
    ("create_job", {**BOOK, **window(day(6 * 365), 9)},
     "window_start", "years ahead"),
    ("create_job", {**BOOK, "window_end": at(day(3), 9)}, "window_end", "at most 24 hours"),
    ("dispatch_technician", {"job_id": "JOB", "technician_id": "TECH", "window_start": at(MONDAY, 9)},
     "window_end", "give both"),
    ("list_jobs", {"date_from": at(TUESDAY, 0), "date_to": at(MONDAY, 0)}, "date_to", "after date_from"),
    ("find_available_slots", {"job_type": "hvac", "date_from": MONDAY.isoformat(), "date_to": day(-5).isoformat()}, "date_to", ""),
    ("find_available_slots", {"job_type": "hvac", "date_from": MONDAY.isoformat(), "date_to": day(188).isoformat()}, "date_to", "31"),
    # contacts
    ("create_job", {**BOOK, "customer": {**NEW_CALLER, "phone": "call me maybe"}}, "customer.phone", ""),
    ("create_job", {**BOOK, "caller_phone": "12"}, "caller_phone", ""),
    ("create_job", {**BOOK, "customer": {**NEW_CALLER, "email": "not-an-email"}}, "customer.email", ""),
    ("create_job", {**BOOK, "customer_id": "CUSTOMER"}, "customer_id", "exactly one"),
    ("create_job", {k: v for k, v in BOOK.items() if k != "customer"}, "customer_id", "exactly one"),
    # control characters, ANSI escapes and bidirectional overrides, in every kind of text
    ("create_job", {**BOOK, "customer": {**NEW_CALLER, "name": "Ann\x00Lee"}}, "customer.name", "control character"),
    ("create_job", {**BOOK, "customer": {**NEW_CALLER, "name": f"Ann{RLO}eeL"}}, "customer.name", "bidirectional"),
    ("lookup_customer", {"name": f"Bob{ANSI}"}, "name", "control character (U+001B)"),
    ("lookup_customer", {"email": "bob\x00@example.com"}, "email", "control character"),
    ("create_job", {**BOOK, "address": f"1 Oak St{RLO}, Springfield"}, "address", "bidirectional"),
    ("create_job", {**BOOK, "address": {**WHERE, "street": f"1 Oak {ANSI}St"}}, "address.street", "control character"),
    ("create_job", {**BOOK, "customer": {**NEW_CALLER, "address": {**WHERE, "city": "Spring\u2066field"}}},
     "customer.address.city", "bidirectional"),
    ("lookup_customer", {"address": {**WHERE, "postal_code": "62704\x85"}}, "address.postal_code", "control character"),
    ("list_technicians", {"skill": "hvac\x07"}, "skill", "control character"),
    ("create_job", {**BOOK, "job_type": "hvac\r\n"}, "job_type", "one line"),
    ("find_available_slots", {"job_type": "hvac\x00", "date_from": MONDAY.isoformat()}, "job_type", "control character"),
    ("create_job", {**BOOK, "summary": "no heat\x1b]0;pwned\x07"}, "summary", "control character"),
    ("update_job_status", {"job_id": "JOB", "status": "on_hold", "note": f"parts{RLO}"}, "note", "bidirectional"),
    ("update_job_status", {"job_id": "JOB", "status": "on_hold", "note": "parts\x9b31m"}, "note", "control character"),
    ("cancel_job", {"job_id": "JOB", "reason": "moved\x1b[1A"}, "reason", "control character"),
    ("cancel_job", {"job_id": "JOB", "reason": "moved\nout"}, "reason", "one line"),
    ("create_invoice", {"job_id": "JOB", "idempotency_key": "k", "line_items": [{**LINE, "description": "Labor\u202d"}]},
     "line_items.0.description", "bidirectional"),
    # years no calendar arithmetic reaches
    ("create_job", {**BOOK, "window_start": "0001-01-01T09:00:00", "window_end": "0001-01-01T11:00:00"},
     "window_start", "year 1 is out of range"),
    ("create_job", {**BOOK, "window_start": "9999-12-31T21:00:00", "window_end": "9999-12-31T23:00:00"},
     "window_start", "year 9999 is out of range"),
    ("create_job", {**BOOK, "window_end": "9999-12-31T23:59:59+00:00"}, "window_end", "year 9999"),
    ("list_jobs", {"date_from": "0001-01-01T00:00:00"}, "date_from", "year 1 is out of range"),
    ("list_jobs", {"date_to": "9999-12-31T23:59:59"}, "date_to", "year 9999 is out of range"),
    ("find_available_slots", {"job_type": "hvac", "date_from": "9999-12-31"}, "date_from", "year 9999"),
    ("find_available_slots", {"job_type": "hvac", "date_from": "0001-01-01"}, "date_from", "year 1 is out of range"),
    ("dispatch_technician", {"job_id": "JOB", "technician_id": "TECH", "window_start": "9999-12-31T21:00:00",
                             "window_end": "9999-12-31T23:00:00"}, "window_start", "year 9999"),
    # an argument that takes text or an object is named as the schema reads it
    ("create_job", {**BOOK, "address": {"city": "Springfield"}}, "address.street", "is required"),
    ("create_job", {**BOOK, "customer": {**NEW_CALLER, "address": {"street": 12}}}, "customer.address.street",
     "must be text"),
    ("lookup_customer", {"address": {**WHERE, "unit": "u" * 51}}, "address.unit", "at most 50 characters"),
    ("lookup_customer", {"address": 5}, "address", "must be text or an object with named fields"),
    # unknown keys, at every depth
    ("create_job", {**BOOK, "customer": {**NEW_CALLER, "vip_discount": "100%"}}, "customer.vip_discount", "leave it out"),
    ("create_job", {**BOOK, "address": {**WHERE, "gate_code": "1234"}}, "address.gate_code", "leave it out"),
    ("create_job", {**BOOK, "customer": {**NEW_CALLER, "address": {**WHERE, "owner": "me"}}}, "customer.address.owner",
     "leave it out"),
    ("create_invoice", {"job_id": "JOB", "idempotency_key": "k", "line_items": [{**LINE, "discount": "50"}]},
     "line_items.0.discount", "leave it out"),
    # unknown ids, look-alikes, metacharacters, another business's records
    ("get_job", {"job_id": SQL}, "job_id", "no job with id"),
    ("get_customer", {"customer_id": TEMPLATE}, "customer_id", "no customer with id"),
    ("get_job", {"job_id": LOOKALIKE}, "job_id", "no job with id"),
    ("update_job_status", {"job_id": "job_nope", "status": "on_hold"}, "job_id", "no job with id"),
    ("cancel_job", {"job_id": "job_nope"}, "job_id", "no job with id"),
    ("create_job", {**{k: v for k, v in BOOK.items() if k != "customer"}, "customer_id": "cus_nope"},
     "customer_id", "no customer with id"),
    ("create_job", {**BOOK, "technician_id": "tech_nope", "window_start": at(TUESDAY, 9),
                    "window_end": at(TUESDAY, 11)}, "technician_id", ""),
    ("dispatch_technician", {"job_id": "JOB", "technician_id": SQL}, "technician_id", ""),
    ("create_invoice", {"job_id": "job_nope", "idempotency_key": "k", "line_items": [LINE]}, "job_id", "no job with id"),
    ("create_invoice", {"job_id": "JOB", "idempotency_key": "k", "line_items": [LINE]}, "job_id", "complete"),
    ("merge_customers", {"keep_id": "cus_nope", "merge_ids": ["CUSTOMER"], "idempotency_key": "k"}, "keep_id", ""),
    ("merge_customers", {"keep_id": "CUSTOMER", "merge_ids": ["CUSTOMER"], "idempotency_key": "k"}, "merge_ids[0]", ""),
    ("get_job", {"job_id": "OTHER_JOB"}, "job_id", "no job with id"),
    ("get_customer", {"customer_id": "OTHER_CUSTOMER"}, "customer_id", "no customer with id"),
    ("dispatch_technician", {"job_id": "OTHER_JOB", "technician_id": "TECH"}, "job_id", "no job with id"),
    ("cancel_job", {"job_id": "OTHER_JOB"}, "job_id", "no job with id"),
    ("update_job_status", {"job_id": "JOB", "status": "completed"}, "status", ""),
    ("cancel_job", {"job_id": "JOB", "confirmation_token": "cf_" + SQL}, "confirmation_token", "not a token"),
]


@pytest.fixture
async def seeded(settings: Settings, add_technician: Any) -> AsyncIterator[tuple[Client, dict[str, str]]]:
    """A business with a customer, a job and a technician, beside another business with its own."""
    other = settings.model_copy(update={"business": BUSINESS.model_copy(update={"tenant_id": "other"})})
    async with Client(build_server(other)) as client:
        theirs = await call(client, "create_job", **BOOK)
    ids = {"TECH": add_technician("Ann Tech", ["hvac"]), "OTHER_JOB": theirs["job_id"],
           "OTHER_CUSTOMER": theirs["customer_id"]}
    # The corpus sends more writes than a caller may make in a minute; the limit is not what it tests.
    roomy = settings.model_copy(update={"access": settings.access.model_copy(
        update={"calls_per_minute": 1000, "writes_per_minute": 1000})})
    async with Client(build_server(roomy)) as client:
        ours = await call(client, "create_job", **{**BOOK, "idempotency_key": "seed"})
        ids |= {"JOB": ours["job_id"], "CUSTOMER": ours["customer_id"]}
        yield client, ids


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _counts(settings: Settings) -> dict[str, int]:

    conn = stores.connect(settings.db_path)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        conn.close()


async def test_the_corpus_is_refused_field_by_field_in_plain_words_writing_nothing(
    seeded: tuple[Client, dict[str, str]], settings: Settings
) -> None:
    client, ids = seeded
    before = _counts(settings)
    tried = refused = 0
    problems = []
    for tool, args, field, words in CORPUS:
        tried += 1
        result = await client.call_tool(tool, _fill(args, ids))
        message = result.content[0].text if result.content else ""  # type: ignore[union-attr]
        plain = f"{_fill(field, ids)}: " in message and words in message
        if words == "":  # no fixed words: the message must still be a sentence for the model, not a code
            plain = plain and len(message.split(": ", 2)[-1].split()) >= 4
        if result.is_error and plain and not any(talk in message for talk in LIBRARY_TALK):
            refused += 1
        else:
            problems.append(f"{tool} {field}: {message[:300]}")
    assert problems == [] and tried == refused >= 110
    assert _counts(settings) == before, "a refused call wrote something"
    assert (await call(client, "lookup_customer", phone="(312) 555-0188"))["matches"]  # still serving


async def test_notes_and_summaries_keep_their_lines_and_tabs_and_names_are_trimmed(client: Client) -> None:
    booked = await call(client, "create_job", **{**BOOK, "summary": "No heat.\r\nPilot light:\tout",
                                                 "customer": {**NEW_CALLER, "name": "  Maria Garcia "}})
    assert booked["summary"] == "No heat.\nPilot light:\tout" and booked["customer_name"] == "Maria Garcia"
    held = await call(client, "update_job_status", job_id=booked["job_id"], status="on_hold", note="Part ordered\nETA\tFri")
    assert held["history"][-1]["note"] == "Part ordered\nETA\tFri"


async def test_phone_numbers_sent_as_json_numbers_are_read_as_their_digits(client: Client) -> None:
    booked = await call(client, "create_job", **{**BOOK, "customer": {**NEW_CALLER, "phone": 3125550188}})
    again = {k: v for k, v in BOOK.items() if k != "customer"}
    second = await call(client, "create_job", **{**again, "customer_id": booked["customer_id"], "job_type": "plumbing",
                                                 "idempotency_key": "k2", "caller_phone": 2175550166})
    assert second["contacts_added"] == ["+12175550166"]
    for number in (3125550188, 2175550166):
        found = await call(client, "lookup_customer", phone=number)
        assert found["matches"][0]["customer_id"] == booked["customer_id"], number
    assert "phone: must be text" in await fail(client, "lookup_customer", phone=True)
