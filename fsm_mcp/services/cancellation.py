"""Canceling a job: previewed, then done on a person's confirmation."""

from __future__ import annotations

from pydantic import BaseModel

from fsm_mcp.businesses import ServedBusiness
from fsm_mcp.errors import VendorRejected
from fsm_mcp.events import changes
from fsm_mcp.models import Job, JobStatus, readable
from fsm_mcp.scheduling import check_transition
from fsm_mcp.services.confirmation import Pending, confirmed, issue
from fsm_mcp.services.requests import Request
from fsm_mcp.store.idempotency import Attempt

OPERATION = "cancel_job"


class CancelRequest(Request):
    job_id: str
    reason: str | None = None


class Cancellation(BaseModel):
    job: Job  # as it stands in a preview, canceled once done
    will_change: str
    pending: Pending | None = None  # set on a preview: nothing changed yet
    already: bool = False  # it was canceled before this call (a retry whose answer was lost)


def _what(job: Job) -> str:
    crew = f", and frees its {len(job.technician_ids)} technician(s)" if job.technician_ids else ""
    return readable(f"Cancels {job.job_type} job {job.job_id} for {job.customer_name}"
                    f"{f' at {job.address}' if job.address else ''}, {job.window_start.isoformat()} to "
                    f"{job.window_end.isoformat()} (now {job.status.value}){crew}.")


async def cancel(business: ServedBusiness, actor: str, key: str | None, request: CancelRequest,
                 token: str | None) -> Cancellation:
    """Without `token`, a preview (nothing changes); with the token that preview issued, the cancellation."""
    job = await business.backend.get_job(request.job_id)
    if job.status is JobStatus.canceled:
        return Cancellation(job=job, will_change="Already canceled; nothing changed.", already=True)
    check_transition(job.status, JobStatus.canceled)
    if why := business.backend.cannot_set(JobStatus.canceled):  # refused now, not after a person has agreed
        raise VendorRejected(why)
    if token is None:
        return Cancellation(job=job, will_change=_what(job), pending=await issue(business, actor, OPERATION, request))

    async def write(_: Attempt) -> Job:
        async def act() -> Job:
            return await business.backend.update_job_status(request.job_id, JobStatus.canceled, request.reason)

        job = await confirmed(business, actor, token, OPERATION, request, act)
        await changes.job_changed(business.db, business.tenant, job)
        return job

    done = await business.writer.run(
        tenant=business.tenant, actor=actor, tool=OPERATION, key=key, request=request, result_type=Job,
        result_id=lambda j: j.job_id, write=write,
    )
    return Cancellation(job=done, will_change="Canceled.")
