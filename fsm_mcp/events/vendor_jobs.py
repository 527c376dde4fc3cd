"""A vendor's job as seen by a poll or after a webhook, turned into the outbox events its change calls for.

A sighting is the job read whole from the vendor and the vendor's time of that version (the newest
modification time among the records it was read from). It is compared with the job as last known: its
latest event in the outbox (which also holds what fsm-mcp's own services recorded when they changed it),
else the state last seen here (the outbox forgets after its retention). Then, in one transaction:

- a sighting older than the one last applied is stale (a late webhook, a read that lost a race): no effect;
  one whose read began before fsm-mcp's own services last changed the job may predate them: it is read again;
- otherwise each difference records its event once (and a service recording the same change later, such
  as the booking of a job the poll saw at the vendor before the booking ended, leaves it out: `outbox.report`): a technician new to the job `technician.assigned`
  (one each), a status moved `job.completed` / `job.cancelled` / `job.status_changed`, a window moved with
  the status unchanged `job.status_changed` with `changed: ["window"]`; a job never known before
  `job.created` first (then its technicians, and its completion or cancellation if it is already
  settled). The same state seen again records nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fsm_mcp.events import outbox
from fsm_mcp.events.changes import job_state
from fsm_mcp.events.outbox import EventType
from fsm_mcp.models import Job
from fsm_mcp.store import Store
from fsm_mcp.store import events as events_sql
from fsm_mcp.store import vendor_changes as sql
from fsm_mcp.store.vendor_changes import unstamp

_STATUS_EVENT: dict[str, EventType] = {"completed": "job.completed", "canceled": "job.cancelled"}


@dataclass(frozen=True, slots=True)
class Sighting:
    job: Job
    modified: datetime  # the vendor's time of this version of the job
    after: int  # the business's feed position (latest event seq) when the read of it began


def events_for(known: dict[str, Any] | None, state: dict[str, Any]) -> list[tuple[EventType, dict[str, Any]]]:
    """What moving from `known` (None: never seen) to `state` reports, in the order to record it."""
    found: list[tuple[EventType, dict[str, Any]]] = []
    if known is None:
        found.append(("job.created", state))  # as a booking reports it: its technicians next; its status, if settled
        settled = state["status"] in _STATUS_EVENT
        known = {**state, "status": None if settled else state["status"], "technician_ids": []}
    for technician_id in state["technician_ids"]:
        if technician_id not in known.get("technician_ids", ()):
            found.append(("technician.assigned", {**state, "technician_id": technician_id}))
    window = (state["window_start"], state["window_end"])
    moved = "window_start" in known and (known["window_start"], known["window_end"]) != window
    if known.get("status") != state["status"]:
        changed = ["status", *(["window"] if moved else [])]
        found.append((_STATUS_EVENT.get(state["status"], "job.status_changed"),
                      {**state, "previous_status": known.get("status"), "changed": changed}))
    elif moved:
        found.append(("job.status_changed", {**state, "previous_status": known.get("status"), "changed": ["window"]}))
    return found


def _apply(conn: Any, tenant: str, now: datetime, sighting: Sighting) -> int:
    job_id = sighting.job.job_id
    state = job_state(sighting.job)
    events_sql.hold(conn, tenant)  # a service's events for this job commit wholly before this reads, or after it
    row = sql.seen(conn, tenant, job_id)
    if row is not None and unstamp(row["modified"]) > sighting.modified:
        return 0  # an older version than one already applied
    last = events_sql.last_of_subject(conn, tenant, "job", job_id)
    mine = json.loads(row["state"]) if row is not None else None
    told = json.loads(last["data"]) if last is not None else None
    known = told if told is not None else mine
    if told is not None and int(last["seq"]) > sighting.after and {k: told.get(k) for k in state} != mine:
        # fsm-mcp's own services changed the job while it was being read: this read may predate their change.
        return -1
    found = events_for(known, state)
    for type_, data in found:
        outbox.insert(conn, tenant, now, type_, "job", job_id, data)
    sql.save_seen(conn, tenant, job_id, sighting.modified, json.dumps(state, sort_keys=True), now)
    return len(found)


async def last_known(db: Store, tenant: str, job_id: str) -> dict[str, Any] | None:
    """The job as fsm-mcp last knew it (`changes.job_state`): its latest event that carries its state, else the
    state last seen at the vendor; None if it knows nothing of it."""

    def read(conn: Any) -> dict[str, Any] | None:
        row = events_sql.last_of_subject(conn, tenant, "job", job_id)
        told = json.loads(row["data"]) if row is not None else None
        if isinstance(told, dict) and "status" in told:
            return told
        seen = sql.seen(conn, tenant, job_id)
        return json.loads(seen["state"]) if seen is not None else None

    return await db.aread(read)


async def noted(db: Store, tenant: str, job_ids: list[str]) -> set[str]:
    """Of these jobs, those last known en route, arrived or working: the statuses fsm-mcp notes on a vendor's job
    (its services recorded them), which a vendor read without the notes cannot tell. Only these need them."""
    marked = {"en_route", "arrived", "working"}

    def read(conn: Any) -> set[str]:
        return {j for j in job_ids if (row := events_sql.last_of_subject(conn, tenant, "job", j)) is not None
                and json.loads(row["data"]).get("status") in marked}

    return await db.aread(read) if job_ids else set()


async def applied(db: Store, tenant: str, versions: dict[str, datetime]) -> set[str]:
    """Of these jobs (id -> the vendor's time of the version listed), those applied at that version already: a
    poll need not read them again."""
    known = await db.aread(sql.seen_many, tenant, list(versions)) if versions else {}
    return {j for j, at in versions.items() if j in known and unstamp(known[j][0]) == at}


async def versions(db: Store, tenant: str, job_ids: list[str]) -> dict[str, datetime]:
    """Job id -> the vendor's time of the version last applied, for those of these jobs applied at all."""
    known = await db.aread(sql.seen_many, tenant, job_ids) if job_ids else {}
    return {j: unstamp(k[0]) for j, k in known.items()}


async def position(db: Store, tenant: str) -> int:
    """Where the business's feed is: take it before reading jobs from the vendor (`Sighting.after`)."""
    return await db.aread(sql.feed_position, tenant)


async def apply(db: Store, tenant: str, sightings: list[Sighting]) -> tuple[int, list[str]]:
    """Record what each sighting changed (each in its own transaction, oldest first): the number of events, and
    the jobs to read again (fsm-mcp changed them while they were being read)."""
    recorded, again = 0, []
    # A poll's window overlaps the last: most of what it reads was applied already, as it is. One read finds
    # those (same version, same state) instead of a transaction each.
    known = await db.aread(sql.seen_many, tenant, [s.job.job_id for s in sightings]) if sightings else {}
    fresh = [s for s in sightings if (k := known.get(s.job.job_id)) is None or unstamp(k[0]) != s.modified
             or json.loads(k[1]) != job_state(s.job)]
    for sighting in sorted(fresh, key=lambda s: s.modified):
        n = await db.awrite(_apply, tenant, db.clock.now(), sighting)
        if n < 0:
            again.append(sighting.job.job_id)
        else:
            recorded += n
    return recorded, again
