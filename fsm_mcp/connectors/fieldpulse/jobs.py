"""Jobs on FieldPulse: reading them whole, dispatching, moving their status.

A job carries its window (start_time, end_time), its technicians (assignments) and one of
FieldPulse's six statuses. An update is a PUT that must repeat the job's customer and type,
so each change reads the job first; FieldPulse has no version check, so a change made by
someone else between the read and the write is overwritten in the fields sent (only those).
Every status fsm-mcp sets is also recorded as a job comment, which gives the history its
times and tells arrived from working, both one "in progress" at FieldPulse.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fsm_mcp.connectors.fieldpulse import mapping
from fsm_mcp.connectors.fieldpulse.api import FieldPulseApi, where
from fsm_mcp.connectors.fieldpulse.catalog import Technicians
from fsm_mcp.connectors.http.concurrently import concurrently
from fsm_mcp.directory import mirror
from fsm_mcp.errors import InvalidInput, NotFound, VendorRejected
from fsm_mcp.inputs import JobFilter
from fsm_mcp.models import Job, JobStatus, StatusChange
from fsm_mcp.scheduling import check_dispatchable, check_technician, check_transition
from fsm_mcp.settings import Business
from fsm_mcp.store import Store

Json = dict[str, Any]
NOT_FOUND_HINT = "Use list_jobs to find the job, or get_customer for a customer's jobs."


class Jobs:
    def __init__(self, api: FieldPulseApi, technicians: Technicians, db: Store, business: Business) -> None:
        self.api, self.technicians, self.db, self.business = api, technicians, db, business

    async def raw(self, job_id: str) -> Json:
        if not job_id.isdigit():
            raise NotFound("job", job_id, "job_id", NOT_FOUND_HINT)
        try:
            return await self.api.get(f"/jobs/{job_id}")  # type: ignore[no-any-return]
        except VendorRejected as exc:
            if exc.status == 404:
                raise NotFound("job", job_id, "job_id", NOT_FOUND_HINT) from None
            raise

    async def get(self, job_id: str) -> Job:
        return (await self.views([await self.raw(job_id)], comments=True))[0]

    async def between(self, start: datetime, end: datetime, *more: tuple[str, str, Any]) -> list[Json]:
        """Jobs starting in [start, end), and matching `more`."""
        return await self.api.all("/jobs", {"filter": where(("start_time", ">=", mapping.stamp(start)),
                                                            ("start_time", "<", mapping.stamp(end)), *more)})

    async def listing(self, query: JobFilter) -> list[Job]:
        conditions: list[tuple[str, str, Any]] = []
        if query.date_from:
            conditions.append(("start_time", ">=", mapping.stamp(query.date_from - timedelta(days=1))))
        if query.date_to:
            conditions.append(("start_time", "<", mapping.stamp(query.date_to)))
        if query.customer_id:
            conditions.append(("customer_id", "=", query.customer_id))
        params = {"filter": where(*conditions)} if conditions else {}
        raw = await self.api.all("/jobs", {**params, "sort_by": "created_at", "sort_dir": "asc"})
        if query.technician_id:
            raw = [j for j in raw if query.technician_id in mapping.assigned(j)]
        found = [j for j in await self.views(raw, comments=False)
                 if (not query.statuses or j.status in query.statuses)
                 and (query.date_from is None or j.window_end > query.date_from)
                 and (query.date_to is None or j.window_start < query.date_to)]
        return sorted(found, key=lambda j: (j.window_start, j.job_id))[:query.limit]

    async def views(self, jobs: list[Json], comments: bool) -> list[Job]:
        """Jobs in the project's terms; with `comments`, their status history (one read per job, together)."""
        if not jobs:
            return []
        remarks = await concurrently(*(lambda j=j: self.api.all("/comments", {"object_type": "job", "object_id": j["id"]})
                                   for j in jobs)) if comments else [[] for _ in jobs]
        names, addresses = await self.db.aread(_places, self.business.tenant_id, jobs)
        return [self._view(j, mapping.marks(c), names, addresses) for j, c in zip(jobs, remarks, strict=True)]

    def _view(self, job: Json, marks: list[StatusChange], names: dict[str, str], addresses: dict[str, str]) -> Job:
        zone = self.business.zone
        created = mapping.when(job.get("created_at"))
        assert created is not None
        status = mapping.status(job, marks)
        start = mapping.when(job.get("start_time")) or created
        end = mapping.when(job.get("end_time")) or start
        history = [StatusChange(status=JobStatus.scheduled, at=created.astimezone(zone)),
                   *(m.model_copy(update={"at": m.at.astimezone(zone)}) for m in marks)]
        if history[-1].status != status:
            changed = mapping.when(job.get("updated_at")) or created
            history.append(StatusChange(status=status, at=changed.astimezone(zone)))
        summary, priority = mapping.notes_in(job.get("notes"))
        customer_id, location_id = str(job["customer_id"]), str(job.get("location_id") or "")
        return Job(
            job_id=str(job["id"]), customer_id=customer_id, customer_name=names.get(customer_id) or f"customer {customer_id}",
            location_id=location_id, address=addresses.get(location_id), job_type=str(job.get("job_type") or ""),
            skill=self.business.skill_for(str(job.get("job_type") or "")), summary=summary, priority=priority,
            window_start=start.astimezone(zone), window_end=end.astimezone(zone), status=status,
            technician_ids=mapping.assigned(job), history=history, created_at=created.astimezone(zone),
        )

    async def update(self, raw: Json, changes: Json, what: str) -> None:
        """PUT the changes, with the customer and job type FieldPulse wants on every update. Setting the same
        values twice changes nothing, so after a lost answer the job is read back and the PUT sent again if needed."""
        job_id = raw["id"]

        async def done() -> Json | None:
            now = await self.raw(str(job_id))
            return now if all(_same(k, now.get(k), v) for k, v in changes.items()) else None

        body = {"customer_id": raw["customer_id"], "job_type": raw.get("job_type"), **changes}
        await self.api.write("PUT", f"/jobs/{job_id}", body, check=done, what=what)

    async def dispatch(self, job_id: str, technician_id: str, window: tuple[datetime, datetime] | None) -> Job:
        raw = await self.raw(job_id)
        job = (await self.views([raw], comments=False))[0]
        check_dispatchable(job)
        tech = await self.technicians.get(technician_id)
        start, end = window or (job.window_start, job.window_end)
        theirs = await self.between(start - timedelta(days=1), end)
        busy = [(b, e, str(j["id"])) for j in theirs
                if str(j["id"]) != job_id and technician_id in mapping.assigned(j) and int(j.get("status") or 1) in mapping.OPEN
                and (b := mapping.when(j.get("start_time"))) and (e := mapping.when(j.get("end_time")))]
        check_technician(job, tech, (start, end), busy, self.business.zone)
        changes: Json = {"start_time": mapping.stamp(start), "end_time": mapping.stamp(end)} if window else {}
        if technician_id not in job.technician_ids:
            changes["assignments"] = sorted(int(t) for t in {*job.technician_ids, technician_id})
        if changes:
            await self.update(raw, changes, f"the assignment of {tech.name}")
        return await self.get(job_id)

    async def set_status(self, job_id: str, status: JobStatus, note: str | None) -> Job:
        raw = await self.raw(job_id)
        job = (await self.views([raw], comments=True))[0]
        check_transition(job.status, status)
        if job.status == status:
            return job  # a retried update changes nothing
        if status == JobStatus.dispatched:
            raise InvalidInput("status", "dispatch a technician with dispatch_technician; it sets the job dispatched")
        if status == JobStatus.scheduled:
            raise InvalidInput("status", "FieldPulse cannot take a job back to scheduled; the dispatcher does that in FieldPulse")
        code = mapping.STATUS_OUT[status]
        if int(raw.get("status") or 1) != code:
            await self.update(raw, {"status": code}, f"the status of job {job_id}")
        await self._comment(job_id, mapping.mark(status, note))
        return await self.get(job_id)

    async def _comment(self, job_id: str, text: str) -> None:
        async def there() -> Json | None:
            found = await self.api.all("/comments", {"object_type": "job", "object_id": job_id})
            return {"done": True} if any(c.get("text") == text for c in found) else None

        await self.api.write("POST", "/comments", {"text": text, "commentable_id": int(job_id), "commentable_type": "job"},
                             check=there, what="the job comment")


def _same(field: str, have: Any, want: Any) -> bool:
    """Whether the job read back holds the value sent: times as moments (FieldPulse answers in its own
    format), assignments as a set."""
    if field in ("start_time", "end_time"):
        return mapping.when(have) == mapping.when(want)
    if field == "assignments":
        return sorted(map(str, have or [])) == sorted(map(str, want))
    return str(have) == str(want)


def _places(conn: Any, tenant: str, jobs: list[Json]) -> tuple[dict[str, str], dict[str, str]]:
    return mirror.names_and_addresses(conn, tenant, (str(j["customer_id"]) for j in jobs),
                                      (str(j.get("location_id") or "") for j in jobs))
