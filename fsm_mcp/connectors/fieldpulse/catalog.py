"""FieldPulse's users as technicians, cached for five minutes.

FieldPulse users carry no skills, so a technician's skills come from the `skills` setting
(by user name or id). GET /users takes `limit` but no `page`: a company's first 100 users
are all the API lists.
"""

from __future__ import annotations

import logging
import math
import time

import anyio

from fsm_mcp.connectors.fieldpulse.api import FieldPulseApi
from fsm_mcp.errors import NotFound
from fsm_mcp.identity.text import fold
from fsm_mcp.models import Technician

log = logging.getLogger(__name__)
FRESH_FOR = 300.0  # seconds; a technician added in FieldPulse shows up within five minutes
MOST_USERS = 100


class Technicians:
    def __init__(self, api: FieldPulseApi) -> None:
        self.api = api
        self._techs: dict[str, Technician] = {}
        self._loaded_at = -math.inf
        self._lock = anyio.Lock()

    async def all(self) -> dict[str, Technician]:
        if time.monotonic() - self._loaded_at > FRESH_FOR:
            async with self._lock:
                if time.monotonic() - self._loaded_at > FRESH_FOR:
                    users = await self.api.get("/users", {"limit": MOST_USERS})
                    if len(users) >= MOST_USERS:
                        log.warning("FieldPulse lists only its first %d users; technicians beyond them are not seen", MOST_USERS)
                    self._techs = {str(u["id"]): self._technician(u) for u in users}
                    self._loaded_at = time.monotonic()
        return self._techs

    def _technician(self, u: dict[str, object]) -> Technician:
        name = " ".join(str(p) for p in (u.get("first_name"), u.get("last_name")) if p).strip() or f"user {u['id']}"
        skills = {fold(s) for key in (str(u["id"]), name) for s in self.api.settings.skills.get(key, [])}
        return Technician(technician_id=str(u["id"]), name=name, phone=str(u["phone"]) if u.get("phone") else None,
                          skills=sorted(skills), active=bool(u.get("is_active", True)))

    async def get(self, technician_id: str) -> Technician:
        if (tech := (await self.all()).get(technician_id)) is None:
            raise NotFound("technician", technician_id, "technician_id", "Call list_technicians for the ids.")
        return tech
