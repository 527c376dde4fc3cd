"""Days and times for tests, computed from the clock: no calendar date is written into a test, so the
suite that passes today passes next year. The booking days are weeks ahead of today where the test
businesses are (America/Chicago), far enough that no run crosses into them."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from fsm_mcp.clock import Clock

ZONE = ZoneInfo("America/Chicago")


def monday(clock: Clock | None = None, weeks_ahead: int = 2) -> date:
    """The Monday `weeks_ahead` weeks after this week's, as the clock reads today in Chicago."""
    today = (clock or Clock()).today(ZONE)
    return today - timedelta(days=today.weekday()) + timedelta(weeks=weeks_ahead)


MONDAY = monday()
TUESDAY = MONDAY + timedelta(days=1)


def at(day: date, hour: int, minute: int = 0) -> str:
    """A local time as an agent sends it: ISO 8601 without an offset."""
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}:00"


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """The same time as an aware datetime in the test businesses' zone."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE)


def iso(day: date, hour: int, minute: int = 0) -> str:
    """A time as the tools answer it: ISO 8601 with the business's offset on that day."""
    return local(day, hour, minute).isoformat()


def window(day: date, start: int, hours: int = 2) -> dict[str, str]:
    """create_job's window arguments, `hours` long from `start` o'clock on `day`."""
    return {"window_start": at(day, start), "window_end": at(day, start + hours)}


def day(n: int) -> date:
    """`n` days after MONDAY (before it when negative)."""
    return MONDAY + timedelta(days=n)
