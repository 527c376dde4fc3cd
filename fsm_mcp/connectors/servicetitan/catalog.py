"""What a booking needs that the agent does not know: ServiceTitan's ids for job types,
business units, technicians and reasons, resolved by name from the settings endpoints and
cached, all fetched together on first use."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

import anyio

from fsm_mcp.connectors.http.concurrently import concurrently
from fsm_mcp.connectors.servicetitan.api import ServiceTitanApi
from fsm_mcp.errors import InvalidInput, NotFound
from fsm_mcp.identity.text import fold
from fsm_mcp.models import Technician

Json = dict[str, Any]
FRESH_FOR = 300.0  # seconds; a technician added in ServiceTitan shows up within five minutes


@dataclass
class Catalog:
    job_types: dict[str, int] = field(default_factory=dict)  # folded name -> id
    job_type_names: dict[int, str] = field(default_factory=dict)
    business_units: dict[int, str] = field(default_factory=dict)
    technicians: dict[str, Technician] = field(default_factory=dict)
    cancel_reasons: dict[str, int] = field(default_factory=dict)
    hold_reasons: dict[str, int] = field(default_factory=dict)
    loaded_at: float = -math.inf  # never: time.monotonic() may start near 0 on a freshly booted machine


class Settings:
    def __init__(self, api: ServiceTitanApi) -> None:
        self.api = api
        self.config = api.settings
        self._catalog = Catalog()
        self._lock = anyio.Lock()

    async def catalog(self) -> Catalog:
        if time.monotonic() - self._catalog.loaded_at > FRESH_FOR:
            async with self._lock:
                if time.monotonic() - self._catalog.loaded_at > FRESH_FOR:
                    self._catalog = await self._load()
        return self._catalog

    async def _load(self) -> Catalog:
        api = self.api
        job_types, units, techs, cancel, hold = await concurrently(  # independent lists: one round trip, not five
            lambda: api.all("jpm", "job-types"), lambda: api.all("settings", "business-units"),
            lambda: api.all("settings", "technicians", {"active": "Any"}), lambda: api.all("jpm", "job-cancel-reasons"),
            lambda: api.all("jpm", "job-hold-reasons"),
        )
        lists = {"job_types": job_types, "units": units, "techs": techs, "cancel": cancel, "hold": hold}
        return Catalog(
            job_types={fold(t["name"]): int(t["id"]) for t in lists["job_types"]},
            job_type_names={int(t["id"]): t["name"] for t in lists["job_types"]},
            business_units={int(b["id"]): b["name"] for b in lists["units"]},
            technicians={str(t["id"]): self._technician(t) for t in lists["techs"]},
            cancel_reasons={r["name"]: int(r["id"]) for r in lists["cancel"] if r.get("active", True)},
            hold_reasons={r["name"]: int(r["id"]) for r in lists["hold"] if r.get("active", True)},
            loaded_at=time.monotonic(),
        )

    def _technician(self, t: Json) -> Technician:
        skills: set[str] = set()
        for custom in t.get("customFields") or []:
            if fold(custom.get("name") or "") == fold(self.config.skills_field):
                skills.update(fold(s) for s in re.split(r"[;,]", custom.get("value") or "") if s.strip())
        for key in (str(t["id"]), t["name"]):
            skills.update(fold(s) for s in self.config.skills.get(key, []))
        return Technician(technician_id=str(t["id"]), name=t["name"], phone=t.get("phoneNumber"),
                          skills=sorted(skills), active=bool(t.get("active", True)))

    async def job_type(self, name: str) -> int:
        catalog = await self.catalog()
        if (found := catalog.job_types.get(fold(name))) is not None:
            return found
        known = ", ".join(sorted(catalog.job_type_names.values()))
        raise InvalidInput("job_type", f"ServiceTitan has no job type named {name!r}; use one of: {known}")

    async def business_unit(self, job_type: str) -> int:
        for name, unit in self.config.business_units.items():
            if fold(name) == fold(job_type):
                return unit
        return self.config.business_unit_id

    async def technician(self, technician_id: str) -> Technician:
        catalog = await self.catalog()
        if (tech := catalog.technicians.get(technician_id)) is None:
            raise NotFound("technician", technician_id, "technician_id", "Call list_technicians for the ids.")
        return tech

    async def reason(self, kind: str) -> int:
        catalog = await self.catalog()
        reasons = catalog.cancel_reasons if kind == "cancel" else catalog.hold_reasons
        wanted = self.config.cancel_reason if kind == "cancel" else self.config.hold_reason
        if wanted is not None:
            for name, rid in reasons.items():
                if fold(name) == fold(wanted):
                    return rid
            raise InvalidInput("status", f"ServiceTitan has no active {kind} reason named {wanted!r} (the {kind}_reason "
                                         "setting); the business's administrator must fix the setting")
        if not reasons:
            raise InvalidInput("status", f"ServiceTitan lists no active {kind} reason, and it needs one; "
                                         "the business must add one in ServiceTitan")
        return next(iter(reasons.values()))
