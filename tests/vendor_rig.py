"""Work done in a fake vendor's own app (not through fsm-mcp): a job made, a technician assigned, a job
completed, as the office or a technician would there. Shared by the vendor-change tests and benchmark."""

from __future__ import annotations

from typing import Any

from tests.fakes.fieldpulse import FakeFieldPulse
from tests.fakes.fieldpulse import stamp as fp_stamp
from tests.fakes.servicetitan import CAMPAIGN, FakeServiceTitan, stamp
from tests.when import MONDAY, local


class _Ask:
    """The fake's handlers read a request's query through this much."""

    def __init__(self, path_id: int = 0) -> None:
        self.path_id = path_id

    def get(self, name: str) -> str | None:
        return None


def st_job(fake: FakeServiceTitan, tech: str | None, hour: int = 9) -> str:
    """A job booked in ServiceTitan's office, for its first customer; `tech` assigned, if given."""
    customer = next(iter(fake.customers.values()))
    location = next(loc for loc in fake.locations.values() if loc["customerId"] == customer["id"])
    start, end = local(MONDAY, hour), local(MONDAY, hour + 2)
    visit: dict[str, Any] = {"start": stamp(start), "end": stamp(end)}
    if tech:
        visit["technicianIds"] = [int(tech)]
    body = {"customerId": customer["id"], "locationId": location["id"], "businessUnitId": 10, "jobTypeId": 20,
            "priority": "Normal", "campaignId": CAMPAIGN, "appointments": [visit], "summary": "No heat"}
    return str(fake.create_job(_Ask(), body)["id"])  # type: ignore[arg-type]


def st_complete(fake: FakeServiceTitan, job_id: str) -> None:
    """The technician marks the job done in ServiceTitan's app."""
    fake.complete_job(_Ask(int(job_id)), {"completedOn": stamp()})  # type: ignore[arg-type]


def fp_job(fake: FakeFieldPulse, tech: str | None, hour: int = 9) -> str:
    """A job booked in FieldPulse's office, for its first customer; `tech` assigned, if given."""
    customer = next(iter(fake.customers))
    body: dict[str, Any] = {"customer_id": customer, "job_type": "Furnace repair",
                            "start_time": stamp(local(MONDAY, hour)), "end_time": stamp(local(MONDAY, hour + 2))}
    if tech:
        body["assignments"] = [int(tech)]
    return str(fake.create_job(_Ask(), body)["id"])  # type: ignore[arg-type]


def fp_complete(fake: FakeFieldPulse, job_id: str) -> None:
    """The technician marks the job completed in FieldPulse's app."""
    fake.jobs[int(job_id)].update(status=4, updated_at=fp_stamp())  # 4: FieldPulse's "completed"
