"""The fake FieldPulse wired to a real server: what the FieldPulse connector tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest
from mcp import Client

from fsm_mcp.connectors.fieldpulse.backend import FieldPulseBackend
from fsm_mcp.server import build_server
from fsm_mcp.settings import Settings
from fsm_mcp.store.db import Database
from tests.fakes.fieldpulse import FakeFieldPulse, connector_settings
from tests.st_rig import BUSINESS


@dataclass
class FpRig:
    fake: FakeFieldPulse
    settings: Settings
    transport: httpx.ASGITransport
    tech: str

    def backend(self, db: Database) -> FieldPulseBackend:
        assert self.settings.fieldpulse is not None
        return FieldPulseBackend.open(db, self.settings.business, self.settings.fieldpulse, self.transport)

    async def sync(self) -> dict[str, int]:
        db = Database(self.settings.db_path)
        backend = self.backend(db)
        try:
            return (await backend.sync.run()).stored
        finally:
            await backend.aclose()
            db.close()

    def client(self) -> Client:
        return Client(build_server(self.settings, self.transport))


@pytest.fixture
async def fp(tmp_path: Path) -> AsyncIterator[FpRig]:
    fake = FakeFieldPulse()
    tech = str(fake.add_technician("Dana Reyes"))
    fake.add_technician("Sam Ortiz")
    fake.add_customer("William Carter", "12 Oak St", "Springfield", "62701", phones=("(217) 555-0143",),
                      emails=("bill@example.com",))
    settings = Settings(db_path=tmp_path / "fp.db", business=BUSINESS, backend="fieldpulse",
                        fieldpulse=connector_settings("http://fp.test"))
    rig = FpRig(fake, settings, httpx.ASGITransport(fake.app), tech)
    await rig.sync()
    yield rig
