"""Independent vendor reads sent at once: a voice agent waits for the slowest, not the sum."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from fsm_mcp.errors import FsmError


async def concurrently(*calls: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Run the calls concurrently and return their results in order. If any fails, the rest are
    cancelled and the failure is raised as itself (an agent-facing error first), not as a group."""
    results: list[Any] = [None] * len(calls)

    async def run(i: int, call: Callable[[], Awaitable[Any]]) -> None:
        results[i] = await call()

    try:
        async with anyio.create_task_group() as tg:
            for i, call in enumerate(calls):
                tg.start_soon(run, i, call)
    except BaseExceptionGroup as group:
        raise first_failure(group) from None
    return results


def first_failure(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The failure to report from a group: an agent-facing error if there is one."""
    leaves = _leaves(group)
    return next((e for e in leaves if isinstance(e, FsmError)), leaves[0])


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out += _leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return out
