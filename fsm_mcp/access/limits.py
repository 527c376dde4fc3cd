"""Per-caller limits on calls and on writes a minute, so that a looping agent cannot burn its
business's vendor quota or fill its calendar. A moving window (the `limits` library): a burst
at the end of one minute and the start of the next is not allowed twice the rate.

The local user (stdio, or a server built in process) is the person at this machine, trusted with
every scope: by default no limit holds them (a script of theirs is not a runaway remote agent);
`local_calls_per_minute` and `local_writes_per_minute` set one.

The count is per server process; several processes behind one load balancer each allow the
rate, which bounds a runaway agent all the same."""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute, storage, strategies

from fsm_mcp.access.callers import LOCAL, Caller
from fsm_mcp.access.config import AccessSettings


def _per_minute(amount: int | None) -> RateLimitItemPerMinute | None:
    return None if amount is None else RateLimitItemPerMinute(amount)


class CallerLimits:
    def __init__(self, calls_per_minute: int, writes_per_minute: int, local_calls_per_minute: int | None = None,
                 local_writes_per_minute: int | None = None) -> None:
        self._remote = (_per_minute(calls_per_minute), _per_minute(writes_per_minute))
        self._local = (_per_minute(local_calls_per_minute), _per_minute(local_writes_per_minute))
        self._window = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    @classmethod
    def of(cls, access: AccessSettings) -> CallerLimits:
        return cls(access.calls_per_minute, access.writes_per_minute, access.local_calls_per_minute,
                   access.local_writes_per_minute)

    def refusal(self, caller: Caller, writes: bool) -> str | None:
        """None when the call may go on (and it is counted); else the tool error's text."""
        key = caller.identity
        # "local" is never the identity of a credential: those are key:, oauth: or client:.
        calls, most_writes = self._local if key == LOCAL.identity else self._remote
        counted_writes = most_writes if writes else None
        # Each count is named: with equal amounts the library would otherwise keep calls and writes in one counter.
        if counted_writes is not None and not self._window.test(counted_writes, "writes", key):
            return self._wait(counted_writes, key, "writes")
        if calls is not None and not self._window.hit(calls, "calls", key):
            return self._wait(calls, key, "calls")
        if counted_writes is not None:
            self._window.hit(counted_writes, "writes", key)
        return None

    def _wait(self, item: RateLimitItemPerMinute, key: str, what: str) -> str:
        reset = self._window.get_window_stats(item, what, key).reset_time
        seconds = max(1, math.ceil(reset - time.time()))
        return (f"Too many {what} from this caller: at most {item.amount} a minute. Nothing was done; "
                f"try again in {seconds} s.")
