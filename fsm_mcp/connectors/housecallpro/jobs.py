"""Jobs on Housecall Pro: reading them whole, dispatching, and the statuses the API can move.

A job carries its schedule (an appointment, or none), its assigned employees, its notes
and one of Housecall Pro's work statuses. What the API lets fsm-mcp change is the
schedule and who is dispatched, through the job's appointments (the operations a
company's API key may use; /schedule and /dispatch take an application key only):
a job becomes dispatched with its employees, scheduled without them, on hold (Housecall
Pro's "needs scheduling") when its appointment is deleted. Starting, completing and
canceling a job happen in Housecall Pro's apps; en route, arrived and working are
recorded as job notes, as every status fsm-mcp sets is, which gives the history its times.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fsm_mcp.connectors.housecallpro import mapping
from fsm_mcp.connectors.housecallpro.api import HousecallProApi
from fsm_mcp.connectors.housecallpro.catalog import Technicians
from fsm_mcp.errors import InvalidInput
from fsm_mcp.inputs import JobFilter
from fsm_mcp.models import Job, JobStatus, StatusChange
from fsm_mcp.scheduling import check_dispatchable, check_technician, check_transition
from fsm_mcp.settings import Business

Json = dict[str, Any]
NOT_FOUND_HINT = "Use list_jobs to find the job, or get_customer for a customer's jobs."
IN_THE_APP = {JobStatus.completed: "complete", JobStatus.canceled: "cancel"}
LIFECYCLE = list(JobStatus)  # scheduled, dispatched, en_route, arrived, working, completed, on_hold, canceled
FILTER = {JobStatus.on_hold: "unscheduled", JobStatus.completed: "completed", JobStatus.canceled: "canceled"}


def cannot_set(status: JobStatus) -> str | None:
    if status in IN_THE_APP:
        return (f"Housecall Pro's API cannot {IN_THE_APP[status]} a job; that is done in the Housecall Pro app, and "
                "get_job shows it at once")
    return None


class Jobs:
    def __init__(self, api: HousecallProApi, technicians: Technicians, business: Business) -> None:
        self.api, self.technicians, self.business = api, technicians, business
        self.zone = business.zone

    async def raw(self, job_id: str) -> Json:
        return await self.api.one("/jobs/{}", "job", job_id, NOT_FOUND_HINT)

    async def get(self, job_id: str) -> Job:
        return self.view(await self.raw(job_id))

    async def between(self, start: datetime, end: datetime, **more: Any) -> list[Json]:
        """Jobs starting in [start, end), and matching `more` (GET /jobs's own filters)."""
        found = await self.api.all("/jobs", "jobs", {"scheduled_start_min": mapping.stamp(start),
                                                     "scheduled_start_max": mapping.stamp(end), **more})
        return [j for j in found if (span := mapping.window(j, self.zone)) and start <= span[0] < end]

    async def busy_for(self, technician_id: str, start: datetime, end: datetime, besides: str = "") -> list[tuple[datetime, datetime, str]]:
        theirs = await self.between(start, end, employee_ids=[technician_id], work_status=list(mapping.BUSY_FILTER))
        return [(*span, str(j["id"])) for j in theirs if str(j["id"]) != besides and mapping.is_open(j)
                and technician_id in mapping.assigned(j) and (span := mapping.window(j, self.zone))]

    async def listing(self, query: JobFilter) -> list[Job]:
        params: Json = {"sort_by": "created_at", "sort_direction": "asc", "customer_id": query.customer_id}
        if query.date_from:  # a job with no schedule has no date: a listing by date leaves it out
            params["scheduled_start_min"] = mapping.stamp(query.date_from - timedelta(days=1))
        if query.date_to:
            params["scheduled_start_max"] = mapping.stamp(query.date_to)
        if query.technician_id:
            params["employee_ids"] = [query.technician_id]
        if query.statuses:
            params["work_status"] = sorted({FILTER.get(s, "scheduled") for s in query.statuses} |
                                           ({"in_progress"} if set(query.statuses) & {*mapping.APP_SET} else set()))
        found = [j for j in map(self.view, await self.api.all("/jobs", "jobs", params))
                 if (not query.statuses or j.status in query.statuses)
                 and (not query.technician_id or query.technician_id in j.technician_ids)
                 and (query.date_from is None or j.window_end > query.date_from)
                 and (query.date_to is None or j.window_start < query.date_to)]
        return sorted(found, key=lambda j: (j.window_start, j.job_id))[:query.limit]

    def view(self, job: Json) -> Job:
        zone = self.zone
        created = mapping.when(job.get("created_at"), zone)
        assert created is not None
        recorded = mapping.marks(job, zone)
        status = mapping.status(job, recorded, zone)
        start, end = mapping.window(job, zone) or (created, created)
        history = [StatusChange(status=JobStatus.scheduled, at=created)]
        # Stamps are to the second: changes within one are told apart by the order a job moves through.
        for change in sorted([*mapping.timestamps(job, zone), *recorded], key=lambda s: (s.at, LIFECYCLE.index(s.status))):
            if change.status != history[-1].status:
                history.append(change)
            elif change.note and not history[-1].note:
                history[-1] = change  # the app and fsm-mcp both said so: keep the one with the note
        if history[-1].status != status:
            history.append(StatusChange(status=status, at=mapping.when(job.get("updated_at"), zone) or created))
        summary, priority = mapping.summary_in(job)
        customer, address = job.get("customer") or {}, job.get("address")
        kind = mapping.job_type(job)
        return Job(
            job_id=str(job["id"]), customer_id=mapping.customer_of(job),
            customer_name=mapping.name_of(customer) or f"customer {mapping.customer_of(job)}",
            location_id=mapping.place_of(job) or None,
            address=mapping.address_in(address).one_line() if address and address.get("street") else None,
            job_type=kind, skill=self.business.skill_for(kind), summary=summary, priority=priority,
            window_start=start.astimezone(zone), window_end=end.astimezone(zone), status=status,
            technician_ids=mapping.assigned(job), history=[h.model_copy(update={"at": h.at.astimezone(zone)}) for h in history],
            created_at=created.astimezone(zone),
        )

    # ----- appointments: the schedule and who is dispatched -----
    async def appointments(self, job_id: str) -> list[Json]:
        return list((await self.api.get(f"/jobs/{job_id}/appointments")).get("appointments") or [])

    async def _one_visit(self, job_id: str) -> Json | None:
        visits = await self.appointments(job_id)
        if len(visits) > 1:
            raise InvalidInput("job_id", f"job {job_id} has {len(visits)} visits in Housecall Pro; change their schedule "
                                         "or technicians in Housecall Pro")
        return visits[0] if visits else None

    async def _set_visit(self, job_id: str, visit: Json | None, start: datetime, end: datetime, employees: list[str],
                         what: str) -> None:
        body = {"start_time": mapping.stamp(start), "end_time": mapping.stamp(end),
                "arrival_window_minutes": int((visit or {}).get("arrival_window_minutes") or 0),
                "dispatched_employees_ids": employees}

        async def done() -> Json | None:  # setting the same appointment twice changes nothing
            for v in await self.appointments(job_id):
                if sorted(map(str, v.get("dispatched_employees_ids") or [])) == employees and \
                        mapping.when(v.get("start_time"), self.zone) == start and mapping.when(v.get("end_time"), self.zone) == end:
                    return v
            return None

        if visit is None:
            await self.api.write("POST", f"/jobs/{job_id}/appointments", body, check=done, what=what)
        else:
            await self.api.write("PUT", f"/jobs/{job_id}/appointments/{visit['id']}", body, check=done, what=what)

    async def dispatch(self, job_id: str, technician_id: str, window: tuple[datetime, datetime] | None) -> Job:
        job = await self.get(job_id)
        check_dispatchable(job)
        tech = await self.technicians.get(technician_id)
        visit = await self._one_visit(job_id)
        if visit is None and window is None:
            raise InvalidInput("window_start", f"job {job_id} has no time in Housecall Pro yet; give window_start and "
                                               "window_end to schedule it while dispatching")
        start, end = window or (job.window_start, job.window_end)
        busy = await self.busy_for(technician_id, start - timedelta(days=1), end, besides=job_id)
        check_technician(job, tech, (start, end), busy, self.zone)
        employees = sorted({*job.technician_ids, technician_id})
        if window is not None or employees != job.technician_ids or visit is None:
            await self._set_visit(job_id, visit, start, end, employees, f"the assignment of {tech.name}")
        return await self.get(job_id)

    async def set_status(self, job_id: str, status: JobStatus, note: str | None, now: datetime) -> Job:
        job = await self.get(job_id)
        check_transition(job.status, status)
        if job.status == status:
            return job  # a retried update changes nothing
        if status == JobStatus.dispatched and job.status in (JobStatus.scheduled, JobStatus.on_hold):
            raise InvalidInput("status", "dispatch a technician with dispatch_technician; it sets the job dispatched")
        if why := cannot_set(status):
            raise InvalidInput("status", why)
        if job.status == JobStatus.on_hold:
            raise InvalidInput("status", f"job {job_id} has no time in Housecall Pro; schedule it with dispatch_technician "
                                         "and a window (window_start, window_end)")
        if status == JobStatus.on_hold:
            await self._unschedule(job_id)
        elif status == JobStatus.scheduled and job.technician_ids:  # from dispatched: nobody on it any more
            visit = await self._one_visit(job_id)
            await self._set_visit(job_id, visit, job.window_start, job.window_end, [], f"the status of job {job_id}")
        await self.note(job_id, mapping.mark(status, now, note))
        return await self.get(job_id)

    async def _unschedule(self, job_id: str) -> None:
        for visit in await self.appointments(job_id):
            async def gone(visit_id: str = str(visit["id"])) -> Json | None:
                return None if any(str(v["id"]) == visit_id for v in await self.appointments(job_id)) else {"done": True}

            await self.api.write("DELETE", f"/jobs/{job_id}/appointments/{visit['id']}", check=gone,
                                 what=f"the appointment of job {job_id}")

    async def note(self, job_id: str, text: str) -> None:
        async def there() -> Json | None:
            found = await self.raw(job_id)
            return {"done": True} if any(n.get("content") == text for n in found.get("notes") or []) else None

        await self.api.write("POST", f"/jobs/{job_id}/notes", {"content": text}, check=there, what="the job note")
