"""SIGKILL at random moments during a stream of idempotent bookings loses nothing and doubles nothing."""

from pathlib import Path

import anyio
import pytest

from tests.crashkit import run


@pytest.mark.anyio
async def test_killing_the_server_mid_stream_leaves_exactly_one_job_per_key(tmp_path: Path) -> None:
    with anyio.fail_after(110):
        out = await run(tmp_path / "crash.db", kills=15, max_alive=0.8, patience=10, seed=20261121)
    assert out.kills == 15 and out.keys > 200 and len(out.acknowledged) > 100, "the stream barely ran"
    assert out.integrity == "ok"
    assert out.missing == [], "acknowledged bookings lost after a kill"
    assert out.duplicated == [], "keys that booked more than one job"
    assert out.replay_mismatches == [], "a retry answered with another job than the first answer"
    assert out.other_errors == [], "calls that neither booked nor replayed"
    assert all(out.jobs_per_key[k] == 1 for k in out.jobs_per_key), "a key whose final retry booked nothing"
