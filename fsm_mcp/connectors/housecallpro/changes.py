"""Housecall Pro's changed jobs, for the job-change poll (`events/vendor_poll.py`).

GET /jobs takes no filter on modification, but sorts by `updated_at`: the poll reads newest first and stops
at the first page that reaches past the window's start. Newest first, a job changed while the pages are
read moves to the front (a page already read): the others shift one place back, so one may be read twice,
none skipped; the moved one is in the next window (the poll's cursor stops at the time it began). A job
holds its schedule, employees, work status and notes, so its `updated_at` is its version. No Housecall Pro
webhooks are received: the poll is the only way its changes are heard.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fsm_mcp.connectors.housecallpro import mapping
from fsm_mcp.connectors.housecallpro.api import MOST, HousecallProApi
from fsm_mcp.connectors.housecallpro.jobs import Jobs
from fsm_mcp.connectors.sync import BUDGET
from fsm_mcp.errors import NotFound
from fsm_mcp.events.vendor_jobs import Sighting, position
from fsm_mcp.store import Store

Json = dict[str, Any]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class HousecallProChanges:
    def __init__(self, api: HousecallProApi, jobs: Jobs, db: Store) -> None:
        self.api, self.jobs, self.db = api, jobs, db
        self.tenant = jobs.business.tenant_id
        self.name = "housecallpro:jobs"

    async def since(self, moment: datetime) -> list[Sighting]:
        after = await position(self.db, self.tenant)
        found: dict[str, Json] = {}
        page = 1
        while True:
            body = await self.api.get("/jobs", {"sort_by": "updated_at", "sort_direction": "desc", "page": page,
                                                "page_size": MOST}, budget=BUDGET)
            rows = body.get("jobs") or []
            for raw in rows:
                if _version(raw) >= moment:
                    found.setdefault(str(raw["id"]), raw)
            if not rows or _version(rows[-1]) < moment or page >= int(body.get("total_pages") or 0):
                break
            page += 1
        return [Sighting(job=self.jobs.view(raw), modified=_version(raw), after=after) for raw in found.values()]

    async def sighting(self, job_id: str) -> Sighting | None:
        after = await position(self.db, self.tenant)
        try:
            raw = await self.jobs.raw(job_id)
        except NotFound:
            return None
        return Sighting(job=self.jobs.view(raw), modified=_version(raw), after=after)


def _version(raw: Json) -> datetime:
    return mapping.when(raw.get("updated_at"), UTC) or EPOCH
