"""Polling a vendor for its changed jobs, resumably, without ever skipping a change.

The cursor is the newest modification time seen at the vendor (the vendor's clock, not ours). Each poll
asks for everything modified since the cursor less `overlap`, so a record committed late with an earlier
time, or several sharing the cursor's time, is read again; the sightings' comparison with the job as last
known (`vendor_jobs`) makes a second reading harmless. The cursor moves only after the sightings are
applied, never back, and never past the time the poll began (our clock; the overlap absorbs a small skew):
a poll cut off anywhere reads the same window again. The first poll of a business
starts `overlap` before now: what changed before fsm-mcp was watching is no event.

After the jobs, the same poll reads the vendor's invoices and payments (`vendor_invoices`), where its feed
has them (`ChangeFeed.money`): a completion is applied before the invoice that bills it is looked at.

A webhook is a hint (`hint`): the job it names is read afresh and applied the same way, so a delivery
repeated, late or out of order has the effect of one reading of the job, and one lost is read by the next poll.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import anyio

from fsm_mcp.events.vendor_invoices import MoneyChangePoll, MoneyFeed
from fsm_mcp.events.vendor_jobs import Sighting, apply
from fsm_mcp.store import Store
from fsm_mcp.store import vendor_changes as sql

OVERLAP = timedelta(minutes=2)
QUICK = timedelta(seconds=10)  # how far before its cursor a quick poll reads (`run(quick=True)`)


class ChangeFeed(Protocol):
    """A vendor's jobs, as the poll reads them."""

    name: str  # the cursor's name, e.g. "servicetitan:jobs"
    money: MoneyFeed | None  # the vendor's invoices and payments, polled after the jobs

    async def since(self, moment: datetime) -> list[Sighting]:
        """Every job modified at or after `moment` (a job's appointments and technicians count), read whole."""
        ...

    async def sighting(self, job_id: str) -> Sighting | None:
        """The job read whole now; None if the vendor has no such job."""
        ...

    async def sightings(self, job_ids: list[str]) -> list[Sighting]:
        """The jobs read whole now, together where the API reads several at once; those it has not, left out."""
        ...


@dataclass
class _Batch:
    """Jobs webhooks named, gathered while the read before them was under way, to be read together."""

    jobs: set[str] = field(default_factory=set)
    read: bool = False  # read and applied
    failed: Exception | None = None  # why its read stopped: each delivery waiting on it is told


class JobChangePoll:
    def __init__(self, db: Store, tenant: str, feed: ChangeFeed, overlap: timedelta = OVERLAP) -> None:
        self.db, self.tenant, self.feed, self.overlap = db, tenant, feed, overlap
        self._lock = anyio.Lock()  # one poll at a time in a process (the background loop, a command)
        self._gathering = _Batch()  # jobs webhooks named since the read under way began
        self._reading = anyio.Lock()  # one webhook read at a time; deliveries queue in arrival order
        self.nudged = anyio.Event()  # set by a webhook: a quick poll is due (`nudge`)
        self.money = None if feed.money is None else MoneyChangePoll(db, tenant, feed.money, overlap)

    def nudge(self) -> None:
        """A webhook came: the vendor is busy, and a delivery lost meanwhile is caught up by a quick poll soon
        (the background loop's, `connectors._keep_synced`), not only by the next full one."""
        self.nudged.set()

    async def run(self, quick: bool = False) -> int:
        """One poll; the number of events it recorded. `quick`: the jobs alone, over the last `QUICK` before the
        cursor instead of the full overlap (the full polls still go back that far, so nothing committed late is
        missed): the catch-up, between full polls, of a webhook lost while others arrive."""
        async with self._lock:
            cursor = await self.db.aread(sql.cursor, self.tenant, self.feed.name)
            began = self.db.clock.now()
            start = (cursor if cursor is not None else began) - (QUICK if quick else self.overlap)
            sightings = await self.feed.since(start)
            recorded = await self._apply(sightings)
            # Not past the time this poll began: a record changed while the list was paged may have moved
            # behind the pages already read, and the next window must still reach it.
            newest = min(max((s.modified for s in sightings), default=cursor or start), began)
            await self.db.awrite(sql.save_cursor, self.tenant, self.feed.name, newest, self.db.clock.now())
        return recorded + (await self.money.run() if self.money is not None and not quick else 0)

    async def hint(self, job_id: str) -> int:
        """A webhook said the job changed: read it and record what changed; the number of events recorded by the
        read that served it. Deliveries that arrive while a read is under way are gathered, and the next read serves
        them all at once (`ChangeFeed.sightings`: ServiceTitan reads 50 jobs in the requests one takes), so copies
        and bursts cost a read per batch, not per delivery. A read begun after a delivery arrived shows at least
        what it announced. A read that fails fails every delivery it was to serve (the vendor delivers again)."""
        batch = self._gathering
        batch.jobs.add(job_id)
        async with self._reading:
            if batch.failed is not None:
                raise batch.failed
            if batch.read:
                return 0
            if self._gathering is batch:  # from here on, deliveries gather for the next read
                self._gathering = _Batch()
            try:
                recorded = await self._apply(await self.feed.sightings(sorted(batch.jobs)))
            except Exception as exc:
                batch.failed = exc
                raise
            batch.read = True
            return recorded

    async def _apply(self, sightings: list[Sighting]) -> int:
        recorded, again = await apply(self.db, self.tenant, sightings)
        if again:  # read once more; if fsm-mcp moves them again meanwhile, the next poll's window has them
            fresh = await self.feed.sightings(sorted(again))
            recorded += (await apply(self.db, self.tenant, fresh))[0]
        return recorded
