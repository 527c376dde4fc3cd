"""The fake Housecall Pro wired to a real server (`Rig` from st_rig), for the Housecall Pro connector tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from fsm_mcp.connectors.housecallpro.backend import HousecallProBackend
from fsm_mcp.settings import Settings
from fsm_mcp.store.db import Database
from tests import stores
from tests.fakes.housecallpro import FakeHousecallPro, connector_settings
from tests.st_rig import BUSINESS, Rig

URL = "https://api.housecallpro.test"


@dataclass
class HcpRig(Rig):
    def backend(self, db: Database) -> Any:
        assert self.settings.housecallpro is not None
        return HousecallProBackend.open(db, self.settings.business, self.settings.housecallpro, self.transport)


def seeded(**fake: Any) -> tuple[FakeHousecallPro, str]:
    """A company as a business has it: two technicians, its job types, one customer; (fake, Dana's id)."""
    hcp = FakeHousecallPro(**fake)
    tech = hcp.add_employee("Dana", "Reyes", tags=("hvac",))
    hcp.add_employee("Sam", "Ortiz")
    for name in BUSINESS.job_types:
        hcp.add_job_type(name)
    hcp.add_customer("William Carter", "12 Oak St", "Springfield", "62701", mobile="(217) 555-0143",
                     email="bill@example.com")
    return hcp, tech


def hcp_settings(db: Path | str, url: str = URL, **changes: Any) -> Settings:
    return Settings(db_path=db, business=BUSINESS, backend="housecallpro", housecallpro=connector_settings(url, **changes))


@pytest.fixture(name="hcp")
async def hcp_rig(tmp_path: Path, store_kind: str) -> AsyncIterator[HcpRig]:
    fake, tech = seeded()
    rig = HcpRig(fake, hcp_settings(stores.target(store_kind, tmp_path, "hcp.db")), httpx.ASGITransport(fake.app), tech)
    await rig.sync()
    yield rig
