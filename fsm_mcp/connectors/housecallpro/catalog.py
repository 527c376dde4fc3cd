"""Housecall Pro's employees as technicians, and its job types, each cached for five minutes.

GET /employees lists the active employees only, so every technician listed is active. A
technician's skills are the employee's tags, plus the `skills` setting (by name or id).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import anyio

from fsm_mcp.connectors.housecallpro.api import HousecallProApi
from fsm_mcp.errors import InvalidInput, NotFound
from fsm_mcp.identity.text import fold
from fsm_mcp.models import Technician

log = logging.getLogger(__name__)
FRESH_FOR = 300.0  # seconds; an employee or job type added in Housecall Pro shows up within five minutes
T = TypeVar("T")


class Cached(Generic[T]):
    def __init__(self, load: Callable[[], Awaitable[T]]) -> None:
        self._load = load
        self._value: T | None = None
        self._loaded_at = -math.inf
        self._lock = anyio.Lock()

    async def get(self) -> T:
        if self._value is None or time.monotonic() - self._loaded_at > FRESH_FOR:
            async with self._lock:
                if self._value is None or time.monotonic() - self._loaded_at > FRESH_FOR:
                    self._value = await self._load()
                    self._loaded_at = time.monotonic()
        return self._value


class Technicians:
    def __init__(self, api: HousecallProApi) -> None:
        self.api = api
        self._all = Cached(self._employees)

    async def _employees(self) -> dict[str, Technician]:
        return {str(e["id"]): self._technician(e) for e in await self.api.all("/employees", "employees")}

    def _technician(self, e: dict[str, Any]) -> Technician:
        name = " ".join(str(p) for p in (e.get("first_name"), e.get("last_name")) if p).strip() or f"employee {e['id']}"
        given = [s for key in (str(e["id"]), name) for s in self.api.settings.skills.get(key, [])]
        skills = {fold(s) for s in [*(e.get("tags") or []), *given] if str(s).strip()}
        return Technician(technician_id=str(e["id"]), name=name, phone=str(e["mobile_number"]) if e.get("mobile_number") else None,
                          skills=sorted(skills), active=True)

    async def all(self) -> dict[str, Technician]:
        return await self._all.get()

    async def get(self, technician_id: str) -> Technician:
        if (tech := (await self.all()).get(technician_id)) is None:
            raise NotFound("technician", technician_id, "technician_id",
                           "Call list_technicians for the ids (Housecall Pro lists its active employees only).")
        return tech


class JobTypes:
    """The company's job types by folded name; a booking's job type must be one of them."""

    def __init__(self, api: HousecallProApi) -> None:
        self.api = api
        self._all = Cached(self._load)

    async def _load(self) -> dict[str, dict[str, Any]]:
        body = await self.api.get("/job_fields/job_types")  # the list takes no page parameters: one answer is all
        if int(body.get("total_pages") or 1) > 1:
            log.warning("Housecall Pro lists only the first %d of %s job types; a booking of another is refused",
                        len(body["job_types"]), body.get("total_items"))
        return {fold(str(t["name"])): t for t in body["job_types"] if t.get("name")}

    async def all(self) -> dict[str, dict[str, Any]]:
        return await self._all.get()

    async def id_of(self, name: str) -> str:
        types = await self.all()
        if (found := types.get(fold(name))) is None:
            known = ", ".join(sorted(str(t["name"]) for t in types.values()))
            raise InvalidInput("job_type", f"Housecall Pro has no job type {name.strip()!r}; "
                                           + (f"use one of: {known}" if known else "the company has none yet") +
                                           " (job types are added in Housecall Pro's job fields settings)")
        return str(found["id"])
