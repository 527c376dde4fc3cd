"""Per-caller limits on calls and on writes a minute, so that a looping agent cannot burn its
business's vendor quota or fill its calendar. A moving window (the `limits` library): a burst
at the end of one minute and the start of the next is not allowed twice the rate.

The count is per server process; several processes behind one load balancer each allow the
rate, which bounds a runaway agent all the same."""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute, storage, strategies

from fsm_mcp.access.callers import Caller


class CallerLimits:
    def __init__(self, calls_per_minute: int, writes_per_minute: int) -> None:
        self._calls = RateLimitItemPerMinute(calls_per_minute)
        self._writes = RateLimitItemPerMinute(writes_per_minute)
        self._window = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    def refusal(self, caller: Caller, writes: bool) -> str | None:
        """None when the call may go on (and it is counted); else the tool error's text."""
        key = caller.identity
        if writes and not self._window.test(self._writes, key):
            return self._wait(self._writes, key, "writes")
        if not self._window.hit(self._calls, key):
            return self._wait(self._calls, key, "calls")
        if writes:
            self._window.hit(self._writes, key)
        return None

    def _wait(self, item: RateLimitItemPerMinute, key: str, what: str) -> str:
        reset = self._window.get_window_stats(item, key).reset_time
        seconds = max(1, math.ceil(reset - time.time()))
        return (f"Too many {what} from this caller: at most {item.amount} a minute. Nothing was done; "
                f"try again in {seconds} s.")
