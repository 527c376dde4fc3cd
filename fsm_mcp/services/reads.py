"""The reads: recognising a caller, a customer's record, jobs, technicians, free slots and
duplicate groups. They take no actor and write nothing; the door masks what its caller may
not see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from fsm_mcp.businesses import ServedBusiness
from fsm_mcp.errors import InvalidInput
from fsm_mcp.events import outbox
from fsm_mcp.events.outbox import Page
from fsm_mcp.identity.keys import Profile
from fsm_mcp.inputs import JobFilter
from fsm_mcp.models import Confidence, Job, Technician
from fsm_mcp.results import CustomerProfile, DuplicateReport, Progress, Recognition
from fsm_mcp.scheduling import Slot


async def recognise(business: ServedBusiness, query: Profile, limit: int) -> Recognition:
    return await business.backend.lookup_customers(query, limit)


async def customer(business: ServedBusiness, customer_id: str) -> CustomerProfile:
    return await business.backend.customer_history(customer_id)


async def job(business: ServedBusiness, job_id: str) -> Job:
    return await business.backend.get_job(job_id)


async def jobs(business: ServedBusiness, query: JobFilter) -> list[Job]:
    if query.date_from and query.date_to and query.date_to <= query.date_from:
        raise InvalidInput("date_to", "must be after date_from")
    return await business.backend.list_jobs(query)


async def technicians(business: ServedBusiness, skill: str | None, include_inactive: bool) -> list[Technician]:
    return await business.backend.list_technicians(skill, include_inactive)


@dataclass(frozen=True, slots=True)
class OpenSlots:
    skill: str
    slots: list[Slot]
    names: dict[str, str]  # technician id -> name, for every technician in a slot


async def open_slots(business: ServedBusiness, job_type: str, date_from: date, date_to: date,
                     duration: timedelta) -> OpenSlots:
    """Arrival windows when a technician with the skill `job_type` needs is free, earliest first."""
    backend = business.backend
    skill = backend.business.skill_for(job_type)
    if not skill:
        raise InvalidInput("job_type", "must not be blank")
    slots = await backend.find_slots(skill, date_from, date_to, duration)
    names = {t.technician_id: t.name for t in await backend.list_technicians(skill, False)}
    return OpenSlots(skill=skill, slots=slots, names=names)


async def duplicates(business: ServedBusiness, min_confidence: Confidence, limit: int,
                     progress: Progress | None = None) -> DuplicateReport:
    return await business.backend.find_duplicates(min_confidence, limit, progress)


async def changes(business: ServedBusiness, since: str | None, limit: int) -> Page:
    """The business's change feed after the cursor `since` (the outbox), with the cursor to pass next time."""
    return await outbox.read(business.db, business.tenant, since, limit,
                             timedelta(days=business.settings.business.event_retention_days))
