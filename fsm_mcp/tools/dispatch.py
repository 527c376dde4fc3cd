"""Technicians, free slots and dispatching."""

from datetime import datetime, timedelta
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from fsm_mcp.access.callers import needs
from fsm_mcp.errors import InvalidInput
from fsm_mcp.inputs import Day, Line, Moment
from fsm_mcp.models import Job, Technician
from fsm_mcp.scheduling import check_window
from fsm_mcp.services import dispatch as dispatching
from fsm_mcp.services import reads
from fsm_mcp.services.dispatch import DispatchRequest
from fsm_mcp.tools._kit import READ, WRITE, actor, agent_errors, business

Id = Annotated[str, Field(min_length=1, max_length=64)]


class TechnicianList(BaseModel):
    technicians: list[Technician]


class FreeTechnician(BaseModel):
    technician_id: str
    name: str


class OpenSlot(BaseModel):
    window_start: datetime
    window_end: datetime
    technicians: list[FreeTechnician]


class SlotList(BaseModel):
    skill: str = Field(description="The skill the job type needs")
    time_zone: str
    slots: list[OpenSlot]


def register(mcp: MCPServer) -> None:
    @mcp.tool(annotations=READ, meta=needs("customers:read"))
    @agent_errors
    async def list_technicians(
        ctx: Context,
        skill: Annotated[Line | None, Field(max_length=100, description="Only technicians with this skill, e.g. hvac")] = None,
        include_inactive: bool = False,
    ) -> TechnicianList:
        """List the business's technicians with their skills. Use it to pick who to dispatch."""
        return TechnicianList(technicians=await reads.technicians(business(ctx), skill, include_inactive))

    @mcp.tool(annotations=READ, meta=needs("customers:read"))
    @agent_errors
    async def find_available_slots(
        ctx: Context,
        job_type: Annotated[Line, Field(min_length=1, max_length=100, description="The job type; decides which skill is needed")],
        date_from: Annotated[Day, Field(description="First day to search, in the business's time zone")],
        date_to: Annotated[Day | None, Field(description="Last day to search (at most 31 days on); defaults to date_from")] = None,
        duration_minutes: Annotated[int, Field(ge=15, le=720, description="Length of the arrival window")] = 120,
    ) -> SlotList:
        """Find arrival windows when a technician with the right skill is free, within working hours and around
        existing bookings, earliest first. Offer the caller two or three, then create_job with the chosen window
        (and technician_id to dispatch at once)."""
        served = business(ctx)
        found = await reads.open_slots(served, job_type, date_from, date_to or date_from,
                                       timedelta(minutes=duration_minutes))
        zone = served.settings.business.zone
        return SlotList(
            skill=found.skill,
            time_zone=served.settings.business.timezone,
            slots=[
                OpenSlot(window_start=s.start.astimezone(zone), window_end=s.end.astimezone(zone),
                         technicians=[FreeTechnician(technician_id=t, name=found.names[t]) for t in s.technician_ids])
                for s in found.slots
            ],
        )

    @mcp.tool(annotations=WRITE, meta=needs("dispatch:write"))
    @agent_errors
    async def dispatch_technician(
        ctx: Context,
        job_id: Id,
        technician_id: Id,
        window_start: Annotated[Moment | None, Field(description="Move the job to this window while dispatching")] = None,
        window_end: Annotated[Moment | None, Field(description="End of the new window; required with window_start")] = None,
        idempotency_key: Annotated[str | None, Field(min_length=1, max_length=255, description="Resend the same key when retrying")] = None,
    ) -> Job:
        """Assign a technician to a job; a scheduled job becomes dispatched. Refused, naming the clashing job, when
        the technician is booked in an overlapping window, and refused for an inactive technician or one without the
        skill the job type needs. Dispatching someone already on the job changes nothing."""
        served = business(ctx)
        window = None
        if (window_start is None) != (window_end is None):
            raise InvalidInput("window_end" if window_end is None else "window_start", "give both window_start and window_end, or neither")
        if window_start and window_end:
            window = check_window(window_start, window_end, served.settings.business, served.clock.now())
        request = DispatchRequest(job_id=job_id, technician_id=technician_id, window=window)
        return await dispatching.dispatch(served, actor(ctx), idempotency_key, request)
