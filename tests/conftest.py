from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from fsm_mcp.connectors.local import technicians
from fsm_mcp.server import build_server
from fsm_mcp.settings import Business, Settings
from fsm_mcp.store import Store, open_store
from tests import stores
from tests.fp_rig import fp  # noqa: F401  (the fake FieldPulse and a server over it)
from tests.st_rig import rig  # noqa: F401  (the fake ServiceTitan and a server over it)
from tests.when import MONDAY, window

BUSINESS = Business(name="Test HVAC", timezone="America/Chicago", job_types={"Furnace repair": "hvac"})


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
def _postgres_scratch() -> Iterator[None]:
    yield from stores.scratch_cleanup()


@pytest.fixture(params=stores.KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    """Every test that touches the store runs on SQLite and on PostgreSQL (skipped, saying why, without one)."""
    return str(request.param)


@pytest.fixture
def shared(tmp_path: Path, store_kind: str) -> Path | str:
    """One store for a test to open several times (as several processes would)."""
    return stores.target(store_kind, tmp_path, "s.db")


@pytest.fixture
def settings(tmp_path: Path, store_kind: str) -> Settings:
    return Settings(db_path=stores.target(store_kind, tmp_path), business=BUSINESS)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Store]:
    """The test's store, opened on the settings' database (a test that needs its own clock defines its own)."""
    store = open_store(settings.db_path)
    yield store
    store.close()


@pytest.fixture
def add_technician(settings: Settings) -> Callable[..., str]:
    """Technicians come from the business's roster (an import), not from a tool."""

    def add(name: str, skills: list[str], active: bool = True) -> str:
        db = open_store(settings.db_path)
        try:
            return db.write(lambda conn: technicians.insert(conn, BUSINESS.tenant_id, name, skills, active=active))
        finally:
            db.close()

    return add


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with Client(build_server(settings)) as c:
        yield c


async def call(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    """Call a tool that must succeed; return its structured result."""
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
    assert result.structured_content is not None
    return result.structured_content


async def fail(client: Client, tool: str, **args: Any) -> str:
    """Call a tool that must fail as a tool error; return the message the model reads."""
    result = await client.call_tool(tool, args)
    assert result.is_error, result.structured_content
    return result.content[0].text  # type: ignore[union-attr]


async def confirmed(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    """A destructive tool's two calls: the preview (which must change nothing), then the call with its token."""
    preview = await call(client, tool, **args)
    assert preview["applied"] is False and preview["confirmation_token"].startswith("cf_"), preview
    return await call(client, tool, **args, confirmation_token=preview["confirmation_token"])


def count(settings: Settings, table: str) -> int:
    conn = stores.connect(settings.db_path)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


NEW_CALLER = {"name": "Maria Garcia", "phone": "(312) 555-0188", "address": "410 Maple Dr, Springfield, IL 62704"}
MONDAY_9 = window(MONDAY, 9)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own, removed after it."""
    prefix = f"fsm-mcp-test:{uuid.uuid4().hex}:"
    yield prefix
    from redis import asyncio as aioredis

    from tests.redis_rig import REDIS_URL

    redis = aioredis.Redis.from_url(REDIS_URL)
    async for key in redis.scan_iter(match=prefix + "*"):
        await redis.delete(key)
    await redis.aclose()
