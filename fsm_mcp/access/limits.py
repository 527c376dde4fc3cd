"""Per-caller limits on calls and on writes a minute, so that a looping agent cannot burn its
business's vendor quota or fill its calendar. A moving window (the `limits` library): a burst
at the end of one minute and the start of the next is not allowed twice the rate.

The local user (stdio, or a server built in process) is the person at this machine, trusted with
every scope: by default no limit holds them (a script of theirs is not a runaway remote agent);
`local_calls_per_minute` and `local_writes_per_minute` set one.

Without Redis the count is per server process: several processes behind one load balancer each
allow the rate, which bounds a runaway agent all the same. With `FSM_MCP_REDIS_URL` every replica
counts in Redis (the library's storage over redis-py), so a caller's minute is one minute
whichever replica answers; when Redis cannot be reached the call is refused, not let through
uncounted."""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.aio import storage, strategies
from limits.errors import StorageError

from fsm_mcp.access.callers import LOCAL, Caller
from fsm_mcp.access.config import AccessSettings


def _per_minute(amount: int | None) -> RateLimitItemPerMinute | None:
    return None if amount is None else RateLimitItemPerMinute(amount)


class CallerLimits:
    def __init__(self, calls_per_minute: int, writes_per_minute: int, local_calls_per_minute: int | None = None,
                 local_writes_per_minute: int | None = None, redis_url: str | None = None,
                 redis_prefix: str = "fsm-mcp-limits") -> None:
        self._remote = (_per_minute(calls_per_minute), _per_minute(writes_per_minute))
        self._local = (_per_minute(local_calls_per_minute), _per_minute(local_writes_per_minute))
        counts: storage.Storage = storage.MemoryStorage() if redis_url is None else storage.RedisStorage(
            redis_url, implementation="redispy", key_prefix=redis_prefix, wrap_exceptions=True)
        self._window = strategies.MovingWindowRateLimiter(counts)

    @classmethod
    def of(cls, access: AccessSettings, redis_url: str | None = None) -> CallerLimits:
        return cls(access.calls_per_minute, access.writes_per_minute, access.local_calls_per_minute,
                   access.local_writes_per_minute, redis_url)

    async def refusal(self, caller: Caller, writes: bool) -> str | None:
        """None when the call may go on (and it is counted); else the tool error's text."""
        try:
            return await self._count(caller, writes)
        except StorageError:
            return ("The shared rate-limit store (Redis) cannot be reached, so this call was not counted and "
                    "nothing was done; try again in a few seconds.")

    async def _count(self, caller: Caller, writes: bool) -> str | None:
        key = caller.identity
        # "local" is never the identity of a credential: those are key:, oauth: or client:.
        calls, most_writes = self._local if key == LOCAL.identity else self._remote
        counted_writes = most_writes if writes else None
        # Each count is named: with equal amounts the library would otherwise keep calls and writes in one counter.
        if counted_writes is not None and not await self._window.test(counted_writes, "writes", key):
            return await self._wait(counted_writes, key, "writes")
        if calls is not None and not await self._window.hit(calls, "calls", key):
            return await self._wait(calls, key, "calls")
        if counted_writes is not None:
            await self._window.hit(counted_writes, "writes", key)
        return None

    async def _wait(self, item: RateLimitItemPerMinute, key: str, what: str) -> str:
        reset = (await self._window.get_window_stats(item, what, key)).reset_time
        seconds = max(1, math.ceil(reset - time.time()))
        return (f"Too many {what} from this caller: at most {item.amount} a minute. Nothing was done; "
                f"try again in {seconds} s.")
