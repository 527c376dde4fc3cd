"""The sliding window the outbox's readers act through (fsm_mcp/events/window.py)."""

from __future__ import annotations

import anyio
import pytest

from fsm_mcp.events.window import Page, slide


class Feed:
    """Positions 1..n; `nothing` are events with nothing to do."""

    def __init__(self, n: int, nothing: frozenset[int] = frozenset(), page: int = 3) -> None:
        self.n, self.nothing, self.page = n, nothing, page
        self.settled: list[int] = []

    async def read(self, after: int | None) -> Page[int, int]:
        start = (after or 0) + 1
        items = [(p, None if p in self.nothing else p) for p in range(start, min(self.n, start + self.page - 1) + 1)]
        return Page(items, bool(items) and items[-1][0] < self.n)

    async def settle(self, at: int) -> None:
        self.settled.append(at)


def test_a_slow_step_holds_only_its_own_slot_and_the_cursor_waits_for_it() -> None:
    feed = Feed(6)
    release = anyio.Event()
    done: list[int] = []

    async def act(n: int) -> bool:
        if n == 1:
            await release.wait()
        done.append(n)
        if len(done) == 5:  # everything after the slow one is done while it still waits
            assert feed.settled == []
            release.set()
        return True

    async def main() -> int:
        return (await slide(feed.read, act, feed.settle, None, at_once=3, poll=0.01)).acted

    assert anyio.run(main) == 6
    assert done == [2, 3, 4, 5, 6, 1]
    assert feed.settled == [6]


def test_no_more_than_at_once_steps_are_under_way() -> None:
    feed = Feed(20)
    now = most = 0

    async def act(n: int) -> bool:
        nonlocal now, most
        now += 1
        most = max(most, now)
        await anyio.sleep(0.001 * (n % 4))
        now -= 1
        return True

    async def main() -> None:
        await slide(feed.read, act, feed.settle, None, at_once=4, poll=0.01)

    anyio.run(main)
    assert most == 4
    assert feed.settled[-1] == 20 and feed.settled == sorted(feed.settled)


def test_a_transient_failure_stops_new_steps_and_the_cursor_stays_before_it() -> None:
    feed = Feed(10)
    started: list[int] = []

    async def act(n: int) -> bool:
        started.append(n)
        await anyio.sleep(0.01 if n != 4 else 0)
        return n != 4

    async def main() -> tuple[int, bool]:
        slid = await slide(feed.read, act, feed.settle, None, at_once=2, poll=0.01)
        return slid.acted, slid.stopped

    acted, stopped = anyio.run(main)
    assert stopped
    assert 4 in started and max(started) <= 5  # the one beside it finished; none started after the failure
    assert feed.settled and max(feed.settled) == 3
    assert acted == len(started) - 1


def test_a_step_that_raises_is_raised_after_those_under_way_finish() -> None:
    feed = Feed(5)
    finished: list[int] = []

    async def act(n: int) -> bool:
        if n == 2:
            raise RuntimeError("refused")
        await anyio.sleep(0.02)
        finished.append(n)
        return True

    async def main() -> None:
        await slide(feed.read, act, feed.settle, None, at_once=2, poll=0.01)

    with pytest.raises(RuntimeError, match="refused"):
        anyio.run(main)
    assert 1 in finished and 3 not in finished
    assert max(feed.settled, default=0) == 1


def test_events_with_nothing_to_do_move_the_cursor_on_their_own() -> None:
    feed = Feed(7, nothing=frozenset({1, 2, 3, 5, 6, 7}))
    acted: list[int] = []

    async def act(n: int) -> bool:
        acted.append(n)
        return True

    async def main() -> None:
        await slide(feed.read, act, feed.settle, None, at_once=2, poll=0.01)

    anyio.run(main)
    assert acted == [4]
    assert feed.settled[-1] == 7
