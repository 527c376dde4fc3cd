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
    backend = SimpleNamespace(db=db, tenant="t", vendor="servicetitan", changes=None)
    try:
        with caplog.at_level(logging.ERROR, logger="fsm_mcp"), anyio.move_on_after(2):
            await connectors._keep_synced(backend, 0.05)  # type: ignore[arg-type]
    finally:
        db.close()
    assert len(passes) >= 3  # the loop went on after each crash
    assert "RuntimeError" in caplog.text and "Jane Doe" not in caplog.text


async def test_the_rounds_start_every_interval_not_every_interval_plus_their_own_time(
        shared: Path | str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The job-change poll is the webhooks' catch-up: after a round of 3 s at an interval of 5 s the next starts
    2 s later, not 5; after one of 7 s, at once."""
    db = open_store(shared)
    now = [100.0]
    rounds: list[float] = []

    async def sync(backend: Any, lease: Any) -> None:
        rounds.append(now[0])
        if len(rounds) == 3:
            raise anyio.get_cancelled_exc_class()
        now[0] += 3.0 if len(rounds) == 1 else 7.0

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    monkeypatch.setattr(connectors, "sync_if_ours", sync)
    monkeypatch.setattr(connectors.anyio, "current_time", lambda: now[0])
    monkeypatch.setattr(connectors.anyio, "sleep", sleep)
    backend = SimpleNamespace(db=db, tenant="t", vendor="servicetitan", changes=None)
    try:
        with pytest.raises(anyio.get_cancelled_exc_class()):
            await connectors._keep_synced(backend, 5.0)  # type: ignore[arg-type]
    finally:
        db.close()
    assert rounds == [100.0, 105.0, 112.0]
