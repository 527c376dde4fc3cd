"""The fake FieldPulse wired to a real server (`Rig` from st_rig), for the FieldPulse connector tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx2 as httpx
import pytest

from fsm_mcp.settings import Settings
from tests import stores
from tests.fakes.fieldpulse import FakeFieldPulse, connector_settings
from tests.st_rig import BUSINESS, Rig


@pytest.fixture
async def fp(tmp_path: Path, store_kind: str) -> AsyncIterator[Rig]:
    fake = FakeFieldPulse()
    tech = str(fake.add_technician("Dana Reyes"))
    fake.add_technician("Sam Ortiz")
    fake.add_customer("William Carter", "12 Oak St", "Springfield", "62701", phones=("(217) 555-0143",),
                      emails=("bill@example.com",))
    settings = Settings(db_path=stores.target(store_kind, tmp_path, "fp.db"), business=BUSINESS, backend="fieldpulse",
                        fieldpulse=connector_settings("http://fp.test"))
    rig = Rig(fake, settings, httpx.ASGITransport(fake.app), tech)
    await rig.sync()
    yield rig
