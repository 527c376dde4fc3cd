"""Malformed arguments come back as tool errors that name the field in plain words, write nothing,
and leave the server serving."""

from typing import Any

import pytest
from mcp import Client

from fsm_mcp.settings import Settings
from tests.conftest import MONDAY_9, NEW_CALLER, call, count, fail

pytestmark = pytest.mark.anyio
LIBRARY_TALK = ("pydantic", "validation error for", "http", "Arguments", "[type=", "input_value")
BOOK = {"customer": NEW_CALLER, "job_type": "hvac", "summary": "no heat", "idempotency_key": "k", **MONDAY_9}


@pytest.mark.parametrize(("tool", "args", "field", "words"), [
    ("update_job_status", {"job_id": 5, "status": "completed"}, "job_id", "must be text"),
    ("update_job_status", {"job_id": "j", "status": "done"}, "status", "must be one of"),
    ("update_job_status", {"status": "completed"}, "job_id", "is required"),
    ("create_job", {**BOOK, "window_start": "tomorrow at nine"}, "window_start", "ISO 8601"),
    ("create_job", {**BOOK, "customer": {"name": ""}}, "customer.name", "must not be empty"),
    ("create_job", {**BOOK, "summary": "x" * 3000}, "summary", "at most 2000 characters"),
    ("create_job", {**BOOK, "allow_duplicate": "perhaps"}, "allow_duplicate", "true or false"),
    ("create_invoice", {"job_id": "j", "idempotency_key": "k",
                        "line_items": [{"description": "x", "quantity": -1, "unit_price": "1"}]},
     "line_items.0.quantity", "must be more than 0"),
    ("create_invoice", {"job_id": "j", "idempotency_key": "k", "line_items": []}, "line_items", "at least 1"),
    ("create_invoice", {"job_id": "j", "idempotency_key": "k", "tax_rate": "0.5",
                        "line_items": [{"description": "x", "quantity": 1, "unit_price": "1"}]}, "tax_rate", "at most 0.30"),
    ("find_available_slots", {"job_type": "hvac", "date_from": "2030-13-01"}, "date_from", "must be a date"),
    ("find_available_slots", {"job_type": "hvac", "date_from": "2030-11-25", "duration_minutes": 5},
     "duration_minutes", "at least 15"),
    ("list_jobs", {"limit": "many"}, "limit", "whole number"),
    ("merge_customers", {"keep_id": "a", "merge_ids": "b", "idempotency_key": "k"}, "merge_ids", "must be a list"),
])
async def test_a_malformed_call_names_the_field_in_plain_words_and_writes_nothing(
    client: Client, settings: Settings, tool: str, args: dict[str, Any], field: str, words: str
) -> None:
    message = await fail(client, tool, **args)
    assert f"{field}: " in message and words in message, message
    assert not any(talk in message for talk in LIBRARY_TALK), message
    assert count(settings, "jobs") == 0 and count(settings, "invoices") == 0 and count(settings, "idempotency") == 0
    assert (await call(client, "lookup_customer", phone="(312) 555-0188"))["matches"] == []  # still serving
