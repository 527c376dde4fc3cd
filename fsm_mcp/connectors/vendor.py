"""What every vendor backend does the same way. Customers are recognised, and duplicates
found, in the directory the connector keeps synced; their recent jobs and balance
(`customer_history`) and the technicians (`roster`) come from the vendor, each its own way."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx2 as httpx

from fsm_mcp.connectors.base import CustomerProfile, DuplicateReport, MergePlan, Progress, Recognition
from fsm_mcp.connectors.sync import DirectorySync
from fsm_mcp.directory import customers, duplicates
from fsm_mcp.errors import InvalidInput
from fsm_mcp.identity.keys import Profile
from fsm_mcp.models import Technician
from fsm_mcp.settings import Business
from fsm_mcp.store.db import Database, utcnow


class VendorBackend:
    vendor: str
    sync: DirectorySync

    def __init__(self, db: Database, business: Business, http: httpx.AsyncClient,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.business, self.http, self.clock = db, business, http, clock
        self.tenant = business.tenant_id

    async def aclose(self) -> None:
        await self.http.aclose()

    async def lookup_customers(self, query: Profile, limit: int) -> Recognition:
        matches = self.db.snapshot(customers.lookup, self.tenant, query, limit)
        top = matches[0] if matches and matches[0].confidence in ("exact", "likely") else None
        return Recognition(matches=matches, profile=await self.customer_history(top.customer_id) if top else None)

    async def customer_history(self, customer_id: str, jobs: int = 5) -> CustomerProfile:
        raise NotImplementedError

    async def find_duplicates(self, min_confidence: str, limit: int, progress: Progress | None = None) -> DuplicateReport:
        return await self.db.ascan(duplicates.find, self.tenant, min_confidence, limit, progress)

    async def merge_customers(self, keep_id: str, merge_ids: list[str], apply: bool) -> MergePlan:
        raise InvalidInput("keep_id", f"{self.vendor}'s API cannot merge customers; merge them in {self.vendor}, and "
                                      "fsm-mcp picks it up at its next sync")

    async def check(self) -> dict[str, Any]:
        """What the connector resolved from the vendor, for `fsm-mcp check`; writes nothing."""
        raise NotImplementedError

    async def roster(self) -> list[Technician]:
        """Every technician the vendor lists, active or not."""
        raise NotImplementedError

    async def list_technicians(self, skill: str | None, include_inactive: bool) -> list[Technician]:
        techs = [t for t in await self.roster() if include_inactive or t.active]
        if skill:
            wanted = self.business.skill_for(skill)
            techs = [t for t in techs if wanted in t.skills]
        return sorted(techs, key=lambda t: t.name)
