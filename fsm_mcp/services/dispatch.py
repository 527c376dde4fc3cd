"""Dispatching: assigning a technician to a job, optionally moving its window."""

from __future__ import annotations

from datetime import datetime

from fsm_mcp.businesses import ServedBusiness
from fsm_mcp.events import changes
from fsm_mcp.models import Job
from fsm_mcp.services.requests import Request
from fsm_mcp.store.idempotency import Attempt

OPERATION = "dispatch_technician"


class DispatchRequest(Request):
    job_id: str
    technician_id: str
    window: tuple[datetime, datetime] | None = None  # aware, in the business's zone


async def dispatch(business: ServedBusiness, actor: str, key: str | None, request: DispatchRequest) -> Job:
    async def write(_: Attempt) -> Job:
        job = await business.backend.dispatch(request.job_id, request.technician_id, request.window)
        await changes.job_changed(business.db, business.tenant, job, assigned=request.technician_id)
        return job

    return await business.writer.run(
        tenant=business.tenant, actor=actor, tool=OPERATION, key=key, request=request, result_type=Job,
        result_id=lambda j: j.job_id, write=write,
    )
