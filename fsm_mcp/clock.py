"""The one clock everything reads: the server, the store, the backends and the commands are handed it where
they are built, so a test can run the whole server a year ahead, or let a confirmation expire, without
touching the system's time. Nothing else in fsm_mcp asks the system what time it is."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo


class Clock:
    """The system's time in UTC to the second, moved by `offset`."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return (datetime.now(UTC) + self.offset).replace(microsecond=0)

    def today(self, zone: tzinfo) -> date:
        """The date it is now where the business is."""
        return self.now().astimezone(zone).date()

    def advance(self, by: timedelta) -> None:
        """Move this clock (and everything holding it) forward: for tests of expiry and of years ahead."""
        self.offset += by

    def __repr__(self) -> str:
        return f"Clock(offset={self.offset!r})" if self.offset else "Clock()"
