"""Housecall Pro's payloads read in the project's terms, directly (no fake): work statuses, the
notes fsm-mcp keeps on a job, money in cents and times without an offset."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fsm_mcp.connectors.housecallpro import mapping
from fsm_mcp.errors import InvalidInput
from fsm_mcp.models import JobStatus
from tests.when import MONDAY, at, local

ZONE = ZoneInfo("America/Chicago")
AT = local(MONDAY, 9).astimezone(UTC)
LATER = mapping.stamp(local(MONDAY, 10))


def job(work_status: str, employees: tuple[str, ...] = (), notes: tuple[str, ...] = (), **more: Any) -> dict[str, Any]:
    return {"work_status": work_status, "assigned_employees": [{"id": e} for e in employees],
            "notes": [{"id": f"n{i}", "content": c} for i, c in enumerate(notes)], **more}


def status_of(raw: dict[str, Any]) -> JobStatus:
    return mapping.status(raw, mapping.marks(raw, ZONE), ZONE)


def test_each_work_status_reads_as_the_projects_status() -> None:
    assert status_of(job("needs scheduling")) == JobStatus.on_hold
    assert status_of(job("scheduled")) == JobStatus.scheduled
    assert status_of(job("scheduled", ("pro_1",))) == JobStatus.dispatched
    assert status_of(job("scheduled", ("pro_1",), work_timestamps={"on_my_way_at": LATER})) == JobStatus.en_route
    assert status_of(job("in progress", ("pro_1",))) == JobStatus.working
    for done in ("complete rated", "complete unrated"):
        assert status_of(job(done)) == JobStatus.completed
    for canceled in ("user canceled", "pro canceled"):
        assert status_of(job(canceled)) == JobStatus.canceled
    assert status_of(job("scheduled", deleted_at=LATER)) == JobStatus.canceled


def test_the_statuses_fsm_mcp_recorded_as_notes_refine_an_open_job_only() -> None:
    arrived = mapping.mark(JobStatus.arrived, AT, "at the door")
    assert status_of(job("scheduled", ("pro_1",), (arrived,))) == JobStatus.arrived
    assert status_of(job("in progress", ("pro_1",), (arrived,))) == JobStatus.arrived
    assert status_of(job("complete rated", ("pro_1",), (arrived,))) == JobStatus.completed
    held = mapping.mark(JobStatus.on_hold, AT, None)
    assert status_of(job("scheduled", ("pro_1",), (arrived, held))) == JobStatus.dispatched  # rescheduled in the app since
    (change,) = mapping.marks(job("scheduled", notes=(arrived,)), ZONE)
    assert (change.status, change.at, change.note) == (JobStatus.arrived, AT, "at the door")


def test_the_first_note_holds_summary_priority_and_the_keys_digest_not_the_key() -> None:
    text = mapping.notes_out("No heat\nsince Monday", "emergency", "call-7f3")
    raw = job("scheduled", notes=(text, mapping.mark(JobStatus.en_route, AT, None)))
    assert mapping.summary_in(raw) == ("No heat\nsince Monday", "emergency")
    assert mapping.carries(raw, "call-7f3") and not mapping.carries(raw, "call-7f4")
    assert "call-7f3" not in text
    assert mapping.summary_in(job("scheduled", notes=("Gate code 12",))) == ("Gate code 12", "normal")


def test_money_goes_in_whole_cents_and_times_without_an_offset_are_local() -> None:
    assert mapping.cents_out(Decimal("89.50"), "unit_price") == 8950 and mapping.money(8950) == Decimal("89.50")
    with pytest.raises(InvalidInput, match="fractions of a cent"):
        mapping.cents_out(Decimal("0.005"), "line_items[0].unit_price")
    with pytest.raises(InvalidInput, match="two decimal places"):
        mapping.quantity_out(Decimal("1.125"), "line_items[0].quantity")
    assert mapping.when(at(MONDAY, 9), ZONE) == local(MONDAY, 9)  # Chicago, as the company's schedule is written
    assert mapping.when(mapping.stamp(local(MONDAY, 9)), ZONE) == local(MONDAY, 9)
    assert mapping.stamp(local(MONDAY, 9)).endswith("Z")
