"""A fake vendor wired to a real server: what the connector tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from mcp import Client

from fsm_mcp.connectors.fieldpulse.backend import FieldPulseBackend
from fsm_mcp.connectors.servicetitan.backend import ServiceTitanBackend
from fsm_mcp.connectors.servicetitan.config import ServiceTitanSettings
from fsm_mcp.server import build_server
from fsm_mcp.settings import Business, Settings
from fsm_mcp.store import open_store
from fsm_mcp.store.db import Database
from tests import stores
from tests.fakes.servicetitan import FakeServiceTitan, connector_settings
from tests.when import MONDAY, window

BUSINESS = Business(timezone="America/Chicago", job_types={"Furnace repair": "hvac", "Drain cleaning": "plumbing"})
WINDOW = window(MONDAY, 9)
NEW_CALLER = {"name": "Ann Lee", "phone": "(217) 555-0199", "email": "ann@example.com"}


@dataclass
class Rig:
    """A fake vendor and the settings of a server over it (ServiceTitan or FieldPulse, as `settings` says)."""

    fake: Any
    settings: Settings
    transport: httpx.ASGITransport
    tech: str

    def backend(self, db: Database) -> Any:
        business = self.settings.business
        if self.settings.fieldpulse is not None:
            return FieldPulseBackend.open(db, business, self.settings.fieldpulse, self.transport)
        assert self.settings.servicetitan is not None
        return ServiceTitanBackend.open(db, business, self.settings.servicetitan, self.transport)

    async def sync(self) -> dict[str, int]:
        db = open_store(self.settings.db_path)
        backend = self.backend(db)
        try:
            return (await backend.sync.run()).stored  # type: ignore[no-any-return]
        finally:
            await backend.aclose()
            db.close()

    def client(self) -> Client:
        return Client(build_server(self.settings, self.transport))


def st_settings(**changes: Any) -> ServiceTitanSettings:
    return connector_settings("http://st.test", **{"business_units": {"Drain cleaning": 11}, **changes})


@pytest.fixture
async def rig(tmp_path: Path, store_kind: str) -> AsyncIterator[Rig]:
    fake = FakeServiceTitan()
    tech = str(fake.add_technician("Dana Reyes", "HVAC; plumbing"))
    fake.add_technician("Sam Ortiz", "electrical")
    fake.add_customer("William Carter", "12 Oak St", "Springfield", "62701", phones=["(217) 555-0143"],
                      emails=["bill@example.com"])
    settings = Settings(db_path=stores.target(store_kind, tmp_path, "st.db"), business=BUSINESS, backend="servicetitan", servicetitan=st_settings())
    rig = Rig(fake, settings, httpx.ASGITransport(fake.app), tech)
    await rig.sync()
    yield rig


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


