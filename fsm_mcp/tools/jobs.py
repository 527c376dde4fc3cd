"""Booking jobs and following them through their states."""

from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from fsm_mcp.access.callers import needs
from fsm_mcp.errors import InvalidInput
from fsm_mcp.identity.phones import InvalidPhone, parse_phone
from fsm_mcp.inputs import (
    AddressArg,
    BookingRequest,
    CustomerDetails,
    JobFilter,
    Line,
    LineItemIn,
    Moment,
    PhoneText,
    Text,
    parse_address,
)
from fsm_mcp.models import Job, JobStatus, Priority
from fsm_mcp.results import Booking
from fsm_mcp.scheduling import check_window, localize
from fsm_mcp.services import booking, cancellation, reads, statuses
from fsm_mcp.services.cancellation import CancelRequest
from fsm_mcp.services.statuses import StatusMove
from fsm_mcp.tools._kit import (
    CHANGE,
    DESTROY,
    READ,
    WRITE,
    ConfirmationToken,
    IdempotencyKey,
    Preview,
    actor,
    agent_errors,
    business,
    previewed,
)
from fsm_mcp.tools._schema import omit_empty

Id = Annotated[str, Field(min_length=1, max_length=64)]


class BookedJob(Job):
    customer_created: bool = Field(description="True when this call added the customer")
    contacts_added: list[str] = omit_empty(
        [], description="Phone numbers or e-mails this booking added to an existing customer's record")
    contact_added: str | None = omit_empty(
        description="The caller, added by this booking as a new contact of the customer's account (its contact_id): "
        "the next call from their number is recognised as them")
    already_booked: bool = Field(
        description="True when an overlapping job of this type already existed for this customer and address; "
        "that job is returned instead of a new one"
    )


class JobList(BaseModel):
    jobs: list[Job]


Movement = Literal["scheduled", "dispatched", "en_route", "arrived", "working", "completed", "on_hold"]


class Cancellation(Preview):
    job: Job = Field(description="The job: as it stands in a preview, canceled once confirmed")


def _booked(booking: Booking) -> BookedJob:
    return BookedJob(**booking.job.model_dump(), customer_created=booking.customer_created,
                     already_booked=booking.already_booked, contacts_added=booking.contacts_added,
                     contact_added=booking.contact_added)


def register(mcp: MCPServer) -> None:
    @mcp.tool(annotations=WRITE, meta=needs("jobs:write"))
    @agent_errors
    async def create_job(
        ctx: Context,
        job_type: Annotated[Line, Field(min_length=1, max_length=100, description="e.g. hvac, plumbing, electrical, or one of the business's own job types")],
        summary: Annotated[Text, Field(min_length=1, max_length=2000, description="What the customer needs, in their words")],
        window_start: Annotated[Moment, Field(description="Arrival window start, ISO 8601; without an offset it is the business's local time")],
        window_end: Annotated[Moment, Field(description="Arrival window end; after window_start")],
        idempotency_key: IdempotencyKey,
        customer_id: Annotated[str | None, Field(max_length=64, description="An existing customer, from lookup_customer")] = None,
        customer: Annotated[CustomerDetails | None, Field(description="A caller's details when you have no customer_id; an existing customer is found, else one is created")] = None,
        address: Annotated[AddressArg | None, Field(description="Service address; may be left out when the customer has exactly one")] = None,
        priority: Priority = "normal",
        technician_id: Annotated[str | None, Field(max_length=64, description="Assign and dispatch this technician at once")] = None,
        allow_duplicate: Annotated[bool, Field(description="Book even if an overlapping job of this type exists for this customer and address")] = False,
        new_customer: Annotated[bool, Field(description="Create a new customer even though lookup found possible matches (after the caller said they are none of them)")] = False,
        caller_phone: Annotated[PhoneText | None, Field(max_length=40, description="The number the caller is calling from (caller ID); added to an existing customer's record when missing, so the next call from it is recognised")] = None,
    ) -> BookedJob:
        """Book a job into an arrival window. Use after lookup_customer (pass customer_id) or for a new caller
        (pass `customer` with name, phone and address); pass caller_phone with the caller ID so a known customer calling
        from a new number is recognised by it next time. When the caller's details fit several customers it refuses
        and lists them: ask the caller which, then call again with customer_id. A job already booked for the same
        customer, address and type in an overlapping window is returned with already_booked=true instead of a second
        one. Find a window first with find_available_slots. Next: dispatch_technician."""
        served = business(ctx)
        if (customer_id is None) == (customer is None):
            raise InvalidInput("customer_id", "give exactly one of customer_id (an existing customer) or customer (a caller's details)")
        if not job_type.strip():
            raise InvalidInput("job_type", "must not be blank; say what kind of work, e.g. hvac or plumbing")
        if not summary.strip():
            raise InvalidInput("summary", "must not be blank; describe the problem in a sentence")
        window = check_window(window_start, window_end, served.settings.business, served.clock.now())
        where = address if address is not None else (customer.address if customer else None)
        try:
            parsed = parse_address(where) if where is not None else None
        except ValueError as exc:
            raise InvalidInput("address", str(exc)) from None
        try:
            caller = parse_phone(caller_phone, served.settings.business.country).e164 if caller_phone else None
        except InvalidPhone as exc:
            raise InvalidInput("caller_phone", f"{exc}; pass the caller ID as received, e.g. +12175550143") from None
        request = BookingRequest(
            customer_id=customer_id, customer=customer, address=parsed, job_type=job_type, summary=summary,
            priority=priority, window=window, technician_id=technician_id, allow_duplicate=allow_duplicate,
            new_customer=new_customer, caller_phone=caller,
        )
        return _booked(await booking.book(served, actor(ctx), idempotency_key, request))

    @mcp.tool(annotations=READ, meta=needs("customers:read"))
    @agent_errors
    async def get_job(ctx: Context, job_id: Id) -> Job:
        """Read one job: customer, address, type, window, status, assigned technicians and every status change
        with its time. Use it to answer "when is my technician coming?"."""
        return await reads.job(business(ctx), job_id)

    @mcp.tool(annotations=READ, meta=needs("customers:read"))
    @agent_errors
    async def list_jobs(
        ctx: Context,
        date_from: Annotated[Moment | None, Field(description="Jobs whose window ends after this time")] = None,
        date_to: Annotated[Moment | None, Field(description="Jobs whose window starts before this time")] = None,
        status: Annotated[list[JobStatus] | None, Field(description="Only jobs in these states")] = None,
        technician_id: Annotated[str | None, Field(max_length=64)] = None,
        customer_id: Annotated[str | None, Field(max_length=64)] = None,
        limit: Annotated[int, Field(ge=1, le=200)] = 50,
    ) -> JobList:
        """List jobs for a dispatcher's board: by day or range, status, technician or customer, earliest first.
        For today's board pass date_from and date_to around the day."""
        served = business(ctx)
        start = localize(date_from, served.settings.business) if date_from else None
        end = localize(date_to, served.settings.business) if date_to else None
        query = JobFilter(date_from=start, date_to=end, statuses=tuple(status or ()), technician_id=technician_id,
                          customer_id=customer_id, limit=limit)
        return JobList(jobs=await reads.jobs(served, query))

    @mcp.tool(annotations=CHANGE, meta=needs("jobs:write"))
    @agent_errors
    async def update_job_status(
        ctx: Context,
        job_id: Id,
        status: Annotated[Movement, Field(description="The new state. To cancel a job, use cancel_job")],
        note: Annotated[Text | None, Field(max_length=2000, description="What happened, kept in the job's history")] = None,
        lines: Annotated[list[LineItemIn] | None, Field(
            min_length=1, max_length=200, description="With completed: the work done and parts used, which are "
            "invoiced for you")] = None,
    ) -> Job:
        """Move a job along scheduled → dispatched → en_route → arrived → working → completed, or to on_hold.
        Moves that make no sense are refused with the allowed ones listed; completed is final. Every change is kept in
        the job's history, and repeating the current status changes nothing, so a retry is safe. With completed, send
        the work done as lines: the job is then invoiced once, by the server (without lines, from the business's
        price list for the job type; a job with neither is flagged for a person), so do not call create_invoice
        as well. To cancel: cancel_job."""
        request = StatusMove(job_id=job_id, status=JobStatus(status), note=note,
                             lines=tuple(lines) if lines else None)
        return await statuses.move(business(ctx), actor(ctx), None, request)

    @mcp.tool(annotations=DESTROY, meta=needs("jobs:write"))
    @agent_errors
    async def cancel_job(
        ctx: Context,
        job_id: Id,
        reason: Annotated[Line | None, Field(max_length=2000, description="Why, kept in the job's history")] = None,
        confirmation_token: ConfirmationToken = None,
    ) -> Cancellation:
        """Cancel a job, in two calls. The first (without confirmation_token) changes nothing: it returns what would
        change and a confirmation_token. Read the preview to the caller or dispatcher; if they agree, call again with the
        same job_id and reason and that token, within 5 minutes. A completed or canceled job cannot be canceled."""
        done = await cancellation.cancel(business(ctx), actor(ctx), None, CancelRequest(job_id=job_id, reason=reason),
                                         confirmation_token)
        if done.pending is not None:
            return Cancellation(**previewed(done.pending, done.will_change), job=done.job)
        return Cancellation(applied=True, will_change=done.will_change, next_step="Tell the caller it is canceled.",
                            job=done.job)
