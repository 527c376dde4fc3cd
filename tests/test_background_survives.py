"""A bug in the background work (the directory sync, the vendor's job changes) must not end the serving replica."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

import fsm_mcp.connectors as connectors
from fsm_mcp.store import open_store

pytestmark = pytest.mark.anyio


async def test_a_crashing_sync_is_logged_and_tried_again(shared: Path | str, monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    db = open_store(shared)
    passes: list[int] = []

    async def sync(backend: Any, lease: Any) -> None:
        passes.append(1)
        raise RuntimeError("Jane Doe at 12 Elm St")  # as a driver error may quote a record

    monkeypatch.setattr(connectors, "sync_if_ours", sync)
    backend = SimpleNamespace(db=db, tenant="t", vendor="servicetitan")
    try:
        with caplog.at_level(logging.ERROR, logger="fsm_mcp"), anyio.move_on_after(2):
            await connectors._keep_synced(backend, 0.05)  # type: ignore[arg-type]
    finally:
        db.close()
    assert len(passes) >= 3  # the loop went on after each crash
    assert "RuntimeError" in caplog.text and "Jane Doe" not in caplog.text
