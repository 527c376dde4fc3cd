"""The outbox: one event per change, in the change's own transaction; read by cursor; kept for a while.

`record` joins the store transaction the calling task has open (`Store.atomic`), so on the local store a
change and its event commit together or not at all. Over a vendor the change is made at the vendor, and a
service's events (`report`) are staged until the vendor has answered, then commit in the transaction that
records the call's idempotency key (`store.idempotency.stage`): a call cut off in between has written
neither, and its retry writes both once. `report` leaves out what the subject's last event already says (a
vendor poll may have seen the change first: a job being booked is at the vendor before the booking ends).

The cursor is an event's id: `read(since=id)` answers the events recorded after it, in the order they
were committed. Events are kept `retention` (the business's `event_retention_days`, 30 by default), and
pruned by the delivery worker's loop (`prune`); a cursor older than that is refused as expired.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from fsm_mcp.errors import InvalidInput
from fsm_mcp.store import Store
from fsm_mcp.store import events as sql
from fsm_mcp.store.db import from_db
from fsm_mcp.store.idempotency import stage

EventType = Literal["job.created", "job.status_changed", "job.completed", "job.cancelled", "technician.assigned",
                    "invoice.created", "invoice.needs_review", "payment.received", "customer.created", "customer.merged",
                    "follow_up.due"]
SubjectType = Literal["job", "invoice", "customer", "payment"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


class Event(BaseModel):
    """One change, as subscribers and `list_changes` see it."""

    id: str = Field(description="Sorts by time; pass the last one seen as `since` to read on from there")
    type: EventType
    subject_type: SubjectType
    subject_id: str
    at: datetime
    data: dict[str, Any] = Field(description="The subject's ids, statuses, job type and amounts after the change; no names, phones, e-mails or addresses")


class Page(BaseModel):
    events: list[Event]
    cursor: str | None = Field(description="Pass as `since` next time; null only while the feed is empty")
    more: bool = Field(description="True when more events wait after this page: call again at once with `cursor`")


def event_of(row: Any) -> Event:
    return Event(id=row["id"], type=row["type"], subject_type=row["subject_type"], subject_id=row["subject_id"],
                 at=from_db(row["at"]), data=json.loads(row["data"]))


async def record(db: Store, tenant: str, type_: EventType, subject_type: SubjectType, subject_id: str,
                 data: dict[str, Any]) -> str:
    """Record one event; inside an open `db.atomic()` it commits (or rolls back) with the change. Returns its id."""
    event_id, _ = await db.awrite(insert, tenant, db.clock.now(), type_, subject_type, subject_id, data)
    return event_id


def insert(conn: Any, tenant: str, now: datetime, type_: EventType, subject_type: SubjectType, subject_id: str,
           data: dict[str, Any]) -> tuple[str, int]:
    """`record` as a SQL function, for code already holding the connection of its transaction
    (`db.awrite(outbox.insert, ...)` alongside its own SQL)."""
    return sql.insert(conn, tenant, now, type_, subject_type, subject_id, json.dumps(data, sort_keys=True, default=str))


_ONCE = {"job.created", "customer.created", "invoice.created", "payment.received"}  # once per subject
_STATUS = {"job.status_changed", "job.completed", "job.cancelled"}


def unreported(last: dict[str, Any] | None, found: list[tuple[EventType, dict[str, Any]]]
               ) -> list[tuple[EventType, dict[str, Any]]]:
    """Of the events `found` for one subject, those its last event (`last`: its data) does not report already."""
    if last is None:
        return found

    def told(type_: str, data: dict[str, Any]) -> bool:
        if type_ in _ONCE:
            return True
        if type_ == "technician.assigned":
            return data.get("technician_id") in last.get("technician_ids", ())
        return type_ in _STATUS and last.get("status") == data.get("status")

    return [(t, d) for t, d in found if not told(t, d)]


def insert_unreported(conn: Any, now: datetime, tenant: str, subject_type: SubjectType, subject_id: str,
                      found: list[tuple[EventType, dict[str, Any]]]) -> int:
    """`unreported` and the insert of what is left, in one transaction, with the business's feed held first (so
    that on PostgreSQL a poll recording the same change waits for this, or this for it). The number recorded."""
    sql.hold(conn, tenant)
    last = sql.last_of_subject(conn, tenant, subject_type, subject_id)
    fresh = unreported(None if last is None else json.loads(last["data"]), found)
    for type_, data in fresh:
        insert(conn, tenant, now, type_, subject_type, subject_id, data)
    return len(fresh)


async def report(db: Store, tenant: str, subject_type: SubjectType, subject_id: str,
                 found: list[tuple[EventType, dict[str, Any]]]) -> None:
    """A service's events for one subject: inside a vendor write, staged to commit with its idempotency record;
    otherwise now, in the open transaction. Either way without what the subject's last event says already."""
    if not found:
        return
    if not stage(lambda conn, now: insert_unreported(conn, now, tenant, subject_type, subject_id, found)):
        await db.awrite(insert_unreported, db.clock.now(), tenant, subject_type, subject_id, found)


async def last_of(db: Store, tenant: str, subject_type: SubjectType, subject_id: str) -> Event | None:
    """The subject's latest event (read in the open transaction, if any)."""
    row = await db.aread(sql.last_of_subject, tenant, subject_type, subject_id)
    return None if row is None else event_of(row)


def _looks_like_an_id(event_id: str) -> bool:
    """An id as `store.db.new_id("evt")` makes them: `evt_`, 13 hex digits of microseconds, 6 random hex digits."""
    prefix, _, rest = event_id.partition("_")
    return prefix == "evt" and len(rest) == 19 and all(c in "0123456789abcdef" for c in rest)


async def read(db: Store, tenant: str, since: str | None, limit: int = DEFAULT_LIMIT,
               retention: timedelta | None = None) -> Page:
    """The business's events after the event `since` (from the oldest kept without it), at most `limit`."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("limit", f"must be between 1 and {MAX_LIMIT}")

    def page(conn: Any) -> tuple[int | None, list[Any], str | None]:
        start: int | None = 0
        if since is not None:
            start = sql.seq_of(conn, tenant, since)
            if start is None:
                oldest = sql.oldest_seq(conn, tenant)
                first = sql.after(conn, tenant, oldest - 1, 1) if oldest is not None else []
                return None, [], first[0]["id"] if first else None
        return start, sql.after(conn, tenant, start or 0, limit + 1), None

    start, rows, oldest_id = await db.aread(page)
    if start is None:
        assert since is not None
        # Ids sort by time: a well-formed id older than the oldest event kept is one that was pruned.
        if _looks_like_an_id(since) and (oldest_id is None or since < oldest_id):
            kept = f"the {retention.days} days" if retention is not None else "the time"
            raise InvalidInput("since", f"this cursor is older than {kept} events are kept, and "
                               "the changes since then are no longer known: read the records afresh (list_jobs, "
                               "get_job), then call again without since to start from the oldest kept event")
        raise InvalidInput("since", "is not a cursor this business's feed gave out: pass the cursor of an earlier "
                           "answer, or leave since out to start from the oldest kept event")
    events = [event_of(r) for r in rows[:limit]]
    return Page(events=events, cursor=events[-1].id if events else since, more=len(rows) > limit)


async def prune(db: Store, tenant: str, retention: timedelta) -> int:
    """Forget events older than `retention` (those a webhook delivery still waits on stay until it is done)."""
    before = db.clock.now() - retention

    def both(conn: Any) -> int:
        sql.prune_deliveries(conn, tenant, before)
        return sql.prune(conn, tenant, before)

    return await db.awrite(both)
