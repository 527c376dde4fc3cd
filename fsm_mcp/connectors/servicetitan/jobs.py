"""Jobs on ServiceTitan: reading them whole, dispatching, moving their status.

A job's window is its first appointment; its technicians are that appointment's
assignments; its history is its creation plus the statuses fsm-mcp recorded as notes.
Reads that do not depend on each other go out together.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fsm_mcp.connectors.http.concurrently import concurrently
from fsm_mcp.connectors.servicetitan import mapping
from fsm_mcp.connectors.servicetitan.api import ServiceTitanApi
from fsm_mcp.connectors.servicetitan.catalog import Settings
from fsm_mcp.directory import mirror
from fsm_mcp.errors import InvalidInput, InvalidTransition, NotFound, VendorRejected
from fsm_mcp.inputs import JobFilter
from fsm_mcp.models import Job, JobStatus, StatusChange
from fsm_mcp.scheduling import check_dispatchable, check_technician, check_transition
from fsm_mcp.settings import Business
from fsm_mcp.store import Store

Json = dict[str, Any]
# The project's states -> the job statuses that hold them. The jobStatus filter supports Scheduled, InProgress,
# Hold, Completed and Canceled, not Dispatched, which a job with a technician on the way may show: a state that
# may sit under it is not filtered for (None), and the views sort the jobs out.
STATUS_FILTER: dict[JobStatus, str | None] = {
    JobStatus.scheduled: "Scheduled", JobStatus.dispatched: None, JobStatus.en_route: None, JobStatus.arrived: None,
    JobStatus.working: "InProgress", JobStatus.completed: "Completed", JobStatus.on_hold: "Hold",
    JobStatus.canceled: "Canceled",
}
NOT_FOUND_HINT = "Use list_jobs to find the job, or get_customer for a customer's jobs."


def job_status_filter(states: tuple[JobStatus, ...]) -> str | None:
    filters = [STATUS_FILTER[s] for s in states]
    if not filters or None in filters:
        return None
    return ",".join(sorted({s for f in filters if f for s in f.split(",")}))


class Jobs:
    def __init__(self, api: ServiceTitanApi, settings: Settings, db: Store, business: Business) -> None:
        self.api = api
        self.settings = settings
        self.db = db
        self.business = business

    async def raw(self, job_id: str) -> Json:
        if not job_id.isdigit():
            raise NotFound("job", job_id, "job_id", NOT_FOUND_HINT)
        try:
            return await self.api.get("jpm", f"jobs/{job_id}")  # type: ignore[no-any-return]
        except VendorRejected as exc:
            if exc.status == 404:
                raise NotFound("job", job_id, "job_id", NOT_FOUND_HINT) from None
            raise

    async def get(self, job_id: str) -> Job:
        return (await self.views([await self.raw(job_id)], notes=True))[0]

    async def listing(self, query: JobFilter) -> list[Job]:
        params: dict[str, Any] = {
            "appointmentStartsOnOrAfter": mapping.stamp(query.date_from - timedelta(days=1)) if query.date_from else None,
            "appointmentStartsBefore": mapping.stamp(query.date_to) if query.date_to else None,
            "technicianId": query.technician_id, "customerId": query.customer_id,
            "jobStatus": job_status_filter(query.statuses),
            "sort": "+Id",
        }
        found = await self.views(await self.api.all("jpm", "jobs", params, size=min(5000, query.limit * 4)), notes=False)
        found = [j for j in found if (not query.statuses or j.status in query.statuses)
                 and (query.date_from is None or j.window_end > query.date_from)
                 and (query.date_to is None or j.window_start < query.date_to)]
        return sorted(found, key=lambda j: (j.window_start, j.job_id))[:query.limit]

    async def views(self, jobs: list[Json], notes: bool, first_visits: list[Json] | None = None) -> list[Job]:
        """Jobs in the project's terms: their appointments (unless given: `first_visits`), assignments (and notes)
        fetched together."""
        if not jobs:
            return []
        first = [int(j["firstAppointmentId"]) for j in jobs]
        api = self.api

        async def visits_of() -> list[Json]:
            return first_visits if first_visits is not None else await api.ids("jpm", "appointments", first)

        visits, assignments, catalog, *job_notes = await concurrently(
            visits_of, lambda: self.assignments(first), self.settings.catalog,
            *((lambda job_id=j["id"]: api.all("jpm", f"jobs/{job_id}/notes")) for j in jobs if notes),
        )
        appointments = {a["id"]: a for a in visits}
        assigned: dict[int, list[str]] = {}
        for s in assignments:
            assigned.setdefault(int(s["appointmentId"]), []).append(str(s["technicianId"]))
        notes_of = dict(zip((j["id"] for j in jobs), job_notes, strict=False))
        places = await self.db.aread(_places, self.business.tenant_id, jobs)
        return [self._view(j, appointments.get(j["firstAppointmentId"]), sorted(assigned.get(j["firstAppointmentId"], [])),
                           notes_of.get(j["id"], []), catalog.job_type_names, places)
                for j in jobs]

    async def assignments(self, appointment_ids: list[int]) -> list[Json]:
        return await self.api.ids("dispatch", "appointment-assignments", appointment_ids, param="appointmentIds")

    def _view(self, job: Json, appointment: Json | None, techs: list[str], notes: list[Json], type_names: dict[int, str],
              places: dict[str, tuple[str, str | None]]) -> Job:
        zone = self.business.zone
        created = mapping.when(job["createdOn"])
        assert created is not None
        marks = mapping.marks(notes)
        status = mapping.status(job, appointment, bool(techs), marks)
        start = mapping.when((appointment or {}).get("arrivalWindowStart") or (appointment or {}).get("start")) or created
        end = mapping.when((appointment or {}).get("arrivalWindowEnd") or (appointment or {}).get("end")) or start
        history = [StatusChange(status=JobStatus.scheduled, at=created.astimezone(zone)),
                   *(m.model_copy(update={"at": m.at.astimezone(zone)}) for m in marks)]
        if history[-1].status != status:
            changed = mapping.when(job.get("completedOn") or job.get("modifiedOn")) or created
            history.append(StatusChange(status=status, at=changed.astimezone(zone)))
        job_type = type_names.get(int(job["jobTypeId"]), str(job["jobTypeId"]))
        name, address = places.get(str(job["id"]), ("", None))
        return Job(
            job_id=str(job["id"]), customer_id=str(job["customerId"]), customer_name=name or f"customer {job['customerId']}",
            location_id=str(job["locationId"]), address=address, job_type=job_type,
            skill=self.business.skill_for(job_type), summary=job.get("summary") or "",
            priority=mapping.PRIORITY_IN.get(str(job.get("priority", "")).lower(), "normal"),
            window_start=start.astimezone(zone), window_end=end.astimezone(zone), status=status, technician_ids=techs,
            history=history, created_at=created.astimezone(zone),
        )

    async def dispatch(self, job_id: str, technician_id: str, window: tuple[datetime, datetime] | None) -> Job:
        raw = await self.raw(job_id)
        job = (await self.views([raw], notes=False))[0]
        check_dispatchable(job)
        tech = await self.settings.technician(technician_id)
        start, end = window or (job.window_start, job.window_end)
        check_technician(job, tech, (start, end), await self._busy(technician_id, raw, start, end), self.business.zone)
        appointment = int(raw["firstAppointmentId"])
        if window:
            body = {"start": mapping.stamp(start), "end": mapping.stamp(end)}
            await self.api.write("PATCH", "jpm", f"appointments/{appointment}/reschedule", body, what="the new window")
        if technician_id not in job.technician_ids:
            async def assigned() -> Json | None:
                rows = await self.assignments([appointment])
                return {"assigned": True} if any(str(r["technicianId"]) == technician_id for r in rows) else None

            await self.api.write("POST", "dispatch", "appointment-assignments/assign-technicians",
                                 {"jobAppointmentId": appointment, "technicianIds": [int(technician_id)]},
                                 check=assigned, what=f"the assignment of {tech.name}")
        return await self.get(job_id)

    async def _busy(self, technician_id: str, raw: Json, start: datetime, end: datetime) -> list[tuple[datetime, datetime, str]]:
        """The technician's other open visits around the window: (start, end, job id)."""
        theirs = await self.api.all("jpm", "appointments", {
            "technicianId": technician_id, "startsOnOrAfter": mapping.stamp(start - timedelta(days=1)),
            "startsBefore": mapping.stamp(end)})
        return [(b, e, str(a["jobId"])) for a in theirs
                if a["jobId"] != raw["id"] and a["status"] not in mapping.CLOSED_VISITS
                and (b := mapping.when(a["start"])) and (e := mapping.when(a["end"]))]

    async def set_status(self, job_id: str, status: JobStatus, note: str | None, now: datetime) -> Job:
        job = await self.get(job_id)
        check_transition(job.status, status)
        if job.status == status:
            return job  # a retried update changes nothing
        if status in mapping.APP_SET:
            if not job.technician_ids:
                raise InvalidTransition(f"status: no technician is assigned to job {job_id}; call dispatch_technician first")
            await self._note(job_id, mapping.mark(status, note))
        elif status == JobStatus.completed:
            await self._finish(job_id, "complete", {"completedOn": mapping.stamp(now)}, "Completed")
        elif status in (JobStatus.canceled, JobStatus.on_hold):
            kind = "cancel" if status == JobStatus.canceled else "hold"
            memo = note or f"{'Canceled' if kind == 'cancel' else 'Put on hold'} through fsm-mcp"
            await self._finish(job_id, kind, {"reasonId": await self.settings.reason(kind), "memo": memo},
                               "Canceled" if kind == "cancel" else "Hold")
        elif status == JobStatus.dispatched:
            raise InvalidInput("status", "dispatch a technician with dispatch_technician; it sets the job dispatched")
        else:
            raise InvalidTransition(f"status: ServiceTitan's API cannot take a job from {job.status.value} back to "
                                    f"{status.value}; the dispatcher does that in ServiceTitan")
        if note and status not in mapping.APP_SET:
            await self._note(job_id, note)
        return await self.get(job_id)

    async def _finish(self, job_id: str, action: str, body: Json, target: str) -> None:
        async def done() -> Json | None:
            return {"done": True} if (await self.raw(job_id)).get("jobStatus") == target else None

        try:
            await self.api.write("PUT", "jpm", f"jobs/{job_id}/{action}", body, check=done, what=f"the {action} of job {job_id}")
        except VendorRejected as exc:
            if exc.status == 409:
                raise InvalidTransition(f"status: ServiceTitan refused: {exc}. A job needs an assigned technician "
                                        "(dispatch_technician) before it can be completed.") from None
            raise

    async def _note(self, job_id: str, text: str) -> None:
        async def there() -> Json | None:
            notes = await self.api.all("jpm", f"jobs/{job_id}/notes")
            return {"done": True} if any(n.get("text") == text for n in notes) else None

        await self.api.write("POST", "jpm", f"jobs/{job_id}/notes", {"text": text}, check=there, what="the job note")


def _places(conn: Any, tenant: str, jobs: list[Json]) -> dict[str, tuple[str, str | None]]:
    """Each job's customer name and service address, from the directory."""
    names, addresses = mirror.names_and_addresses(conn, tenant, (str(j["customerId"]) for j in jobs),
                                                  (str(j["locationId"]) for j in jobs))
    return {str(j["id"]): (names.get(str(j["customerId"]), ""), addresses.get(str(j["locationId"]))) for j in jobs}
