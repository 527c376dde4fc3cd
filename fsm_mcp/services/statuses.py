"""Moving a job along its states. Canceling is not a move: it needs a person's confirmation
(`cancellation`)."""

from __future__ import annotations

from fsm_mcp.businesses import ServedBusiness
from fsm_mcp.errors import InvalidInput
from fsm_mcp.events import automations, changes
from fsm_mcp.inputs import LineItemIn
from fsm_mcp.models import Job, JobStatus
from fsm_mcp.services.requests import Request
from fsm_mcp.store.idempotency import Attempt

OPERATION = "update_job_status"


class StatusMove(Request):
    job_id: str
    status: JobStatus
    note: str | None = None
    lines: tuple[LineItemIn, ...] | None = None  # the work done, with completed: invoiced by the automation


async def move(business: ServedBusiness, actor: str, key: str | None, request: StatusMove) -> Job:
    """Repeating the current status changes nothing, so a retry without a key is safe too."""
    if request.status is JobStatus.canceled:
        raise InvalidInput("status", "canceling needs a person's confirmation: use cancel_job")

    async def write(_: Attempt) -> Job:  # checks that need no store run here, after the key: a changed retry is a key reuse
        if request.lines and request.status is not JobStatus.completed:
            raise InvalidInput("lines", "are the work done, sent with status completed; leave them out otherwise")
        job = await business.backend.update_job_status(request.job_id, request.status, request.note)
        if request.lines:  # before the completion's event, which the automation acts on
            await automations.note_work(business.db, business.tenant, job.job_id, list(request.lines))
        await changes.job_changed(business.db, business.tenant, job)
        return job

    return await business.writer.run(
        tenant=business.tenant, actor=actor, tool=OPERATION, key=key, request=request, result_type=Job,
        result_id=lambda j: j.job_id, write=write,
    )
