"""Job states, arrival windows, conflicts and free slots. Knows nothing of MCP or storage."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from fsm_mcp.errors import InvalidInput, InvalidTransition, SchedulingConflict
from fsm_mcp.models import Job, Technician
from fsm_mcp.models import JobStatus as S
from fsm_mcp.settings import WEEKDAYS, Business

TRANSITIONS: Mapping[S, frozenset[S]] = {
    S.scheduled: frozenset({S.dispatched, S.on_hold, S.canceled}),
    S.dispatched: frozenset({S.en_route, S.arrived, S.scheduled, S.on_hold, S.canceled}),
    S.en_route: frozenset({S.arrived, S.dispatched, S.on_hold, S.canceled}),
    S.arrived: frozenset({S.working, S.on_hold, S.canceled}),
    S.working: frozenset({S.completed, S.on_hold}),
    S.on_hold: frozenset({S.scheduled, S.dispatched, S.working, S.canceled}),
    S.completed: frozenset(),
    S.canceled: frozenset(),
}

# A technician is taken for a window while one of their jobs there is in these states.
BOOKED = frozenset({S.scheduled, S.dispatched, S.en_route, S.arrived, S.working})
MAX_WINDOW = timedelta(hours=24)
MAX_AHEAD = timedelta(days=5 * 365)  # a booking further out is a mistaken year, not a plan


def check_transition(current: S, new: S) -> None:
    """Refuse a move the job cannot make; staying where it is is allowed (a retry)."""
    if new == current:
        return
    allowed = TRANSITIONS[current]
    if new not in allowed:
        if not allowed:
            raise InvalidTransition(
                f"status: the job is {current.value}, which is final; create a new job for further work"
            )
        options = ", ".join(sorted(s.value for s in allowed))
        raise InvalidTransition(
            f"status: a {current.value} job cannot become {new.value}; from {current.value} it can become: {options}"
        )


def localize(moment: datetime, business: Business) -> datetime:
    """A naive time is read in the business's own time zone."""
    return moment.replace(tzinfo=business.zone) if moment.tzinfo is None else moment


def it_is_now(now: datetime, business: Business) -> str:
    """The time as the business's caller would say it: "10:42 on Thu Dec 03 in America/Chicago"."""
    return f"{now.astimezone(business.zone):%H:%M on %a %b %d} in {business.timezone}"


def check_window(start: datetime, end: datetime, business: Business, now: datetime,
                 prefix: str = "window") -> tuple[datetime, datetime]:
    """An arrival window the business can still keep: ordered, at most a day long, not over yet (one that has
    begun may still be booked: "come as soon as you can"), and not years ahead."""
    start, end = localize(start, business), localize(end, business)
    if end <= start:
        raise InvalidInput(f"{prefix}_end", f"must be after {prefix}_start ({start.isoformat()}); send a later end time")
    if end - start > MAX_WINDOW:
        raise InvalidInput(f"{prefix}_end", "an arrival window can be at most 24 hours long; split longer work into jobs")
    if end <= now:
        raise InvalidInput(f"{prefix}_start", f"that time has passed; it is now {it_is_now(now, business)}. "
                           "Pick a window ahead; find_available_slots lists the free ones")
    if start - now > MAX_AHEAD:
        raise InvalidInput(f"{prefix}_start", f"is more than {MAX_AHEAD.days // 365} years ahead; check the year")
    return start, end


def overlaps(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def check_dispatchable(job: Job) -> None:
    if job.status in (S.completed, S.canceled):
        raise InvalidTransition(f"job_id: the job is {job.status.value}; a technician cannot be dispatched to it")


def check_technician(job: Job, tech: Technician, window: tuple[datetime, datetime],
                     others: Iterable[tuple[datetime, datetime, str]], zone: tzinfo) -> None:
    """The technician may take the job in the window: active, skilled for it, and free of their
    other jobs (start, end, job id) then."""
    if not tech.active:
        raise InvalidInput("technician_id", f"{tech.name} is inactive; call list_technicians to pick an active one")
    require_skill(job.skill, tech.skills, tech.name)
    for other_start, other_end, other_id in others:
        if overlaps(window, (other_start, other_end)):
            raise SchedulingConflict(
                f"technician_id: {tech.name} is already booked {other_start.astimezone(zone):%a %b %d %H:%M}–"
                f"{other_end.astimezone(zone):%H:%M} on job {other_id}. Pick another technician or window; "
                "find_available_slots lists who is free when."
            )


def check_invoiceable(job: Job) -> None:
    if job.status != S.completed:
        raise InvalidTransition(
            f"job_id: the job is {job.status.value}; only a completed job can be invoiced. "
            "Call update_job_status with status=completed when the work is done."
        )


def require_skill(skill: str, skills: Iterable[str], technician: str) -> None:
    if skill not in {s.casefold() for s in skills}:
        raise InvalidInput(
            "technician_id",
            f"{technician} does not have the skill {skill!r} this job needs; "
            "call list_technicians with skill=" + repr(skill) + " to find one who does",
        )


@dataclass(frozen=True, slots=True)
class Slot:
    start: datetime
    end: datetime
    technician_ids: tuple[str, ...]


def free_slots(
    business: Business,
    date_from: date,
    date_to: date,
    duration: timedelta,
    technicians: Sequence[str],
    busy: Mapping[str, Sequence[tuple[datetime, datetime]]],
    now: datetime,
) -> list[Slot]:
    """Windows of `duration` inside working hours, each with the technicians free for all of it."""
    if date_to < date_from:
        raise InvalidInput("date_to", "must be on or after date_from")
    if (date_to - date_from).days > 31:
        raise InvalidInput("date_to", "search at most 31 days at a time; narrow the range")
    if date_from - now.astimezone(business.zone).date() > MAX_AHEAD:
        raise InvalidInput("date_from", f"is more than {MAX_AHEAD.days // 365} years ahead, further than any booking "
                           "can be; check the year")
    slots: list[Slot] = []
    day = date_from
    while day <= date_to:
        hours = business.working_hours.get(WEEKDAYS[day.weekday()])
        if hours:
            start = datetime.combine(day, hours[0], business.zone)
            close = datetime.combine(day, hours[1], business.zone)
            while start + duration <= close:
                window = (start, start + duration)
                if start >= now:
                    free = tuple(t for t in technicians if not any(overlaps(window, b) for b in busy.get(t, ())))
                    if free:
                        slots.append(Slot(window[0], window[1], free))
                start += duration
        day += timedelta(days=1)
    return slots
