"""Acting on a feed in order, several at once: a sliding window.

A reader of the outbox (the automations, the books) acts on some of its events, each step waiting on a vendor.
One after another, a step waiting out a 429 hold stops all behind it; in batches, the slowest of each batch
does. In a window, up to `at_once` steps are under way, a new one starts as soon as any finishes, and the
cursor moves to just before the first event not done yet, so a crash or a stop repeats only the steps from
there (each is repeatable). While any is under way the feed is read again every `poll` seconds, so an event
recorded meanwhile starts at once.

A step that returns False failed transiently, and one that raises failed for good: either way no new step
starts, those under way finish, the cursor stays before it, and the failure (the first, if several) is raised.
The round ends when nothing is left, or, those under way finished, after `longest` seconds of reading, so that
the reader's other work is not starved.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio

T = TypeVar("T")
Position = TypeVar("Position")


@dataclass(frozen=True, slots=True)
class Page(Generic[Position, T]):
    """What one read of the feed found, oldest first: (position, the step's subject or None: nothing to do)."""

    items: list[tuple[Position, T | None]]
    more: bool


@dataclass(frozen=True, slots=True)
class Slid:
    acted: int  # steps done
    stopped: bool  # a step failed transiently: the rest waits for the next round


async def slide(read: Callable[[Position | None], Awaitable[Page[Position, T]]],
                act: Callable[[T], Awaitable[bool]],
                settle: Callable[[Position], Awaitable[None]],
                start: Position | None, at_once: int, poll: float = 0.1, longest: float = 60.0,
                ahead: int = 0) -> Slid:
    """Read from `start` (exclusive), act on each item with a subject, `at_once` at a time, and `settle` the
    position just before the first item not done, as it moves. `ahead`: items read past that first one, at most
    (by default ten windows' worth)."""
    slots = anyio.Semaphore(max(1, at_once))
    ahead = ahead or 10 * max(1, at_once)
    order: deque[list[object]] = deque()  # [position, done], in feed order, from the first not done
    room = anyio.Event()  # set when the head has moved (the reader may read on)
    moving = anyio.Lock()  # settles in feed order
    finished = anyio.Event()  # set when a step ends (the reader, polling, may look again)
    failures: list[Exception] = []
    stopped = False
    acted = under_way = 0

    async def head() -> None:
        async with moving:
            last = None
            while order and order[0][1]:
                last = order.popleft()[0]
            if last is not None:
                await settle(last)  # type: ignore[arg-type]
                room.set()

    async def one(entry: list[object], subject: T) -> None:
        nonlocal acted, under_way, stopped
        try:
            done = await act(subject)
        except Exception as exc:
            failures.append(exc)
            done = False
        finally:
            slots.release()
            under_way -= 1
            finished.set()
        if not done:
            stopped = True
            room.set()  # the reader, if waiting for room, stops
            return
        acted += 1
        entry[1] = True
        await head()

    async with anyio.create_task_group() as tg:
        position = start
        until = anyio.current_time() + longest
        while not stopped and anyio.current_time() < until:
            page = await read(position)
            for at, subject in page.items:
                entry: list[object] = [at, subject is None]
                order.append(entry)
                if subject is not None:
                    await slots.acquire()
                    if stopped:
                        slots.release()
                        break
                    under_way += 1
                    tg.start_soon(one, entry, subject)
                position = at
            else:
                await head()  # a page with nothing to do moves the cursor too
                while len(order) > ahead and not stopped:
                    room = anyio.Event()
                    await room.wait()
                if page.more:
                    continue
                if not under_way:
                    break
                finished = anyio.Event()  # caught up: look again at the next finish, or in `poll` seconds
                with anyio.move_on_after(poll):
                    await finished.wait()
                continue
            break
    if failures:
        raise failures[0]
    return Slid(acted=acted, stopped=stopped)
