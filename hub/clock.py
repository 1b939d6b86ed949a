"""Time as the hub sees it: UTC in storage, dates and deadlines in the hub's time zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def local_date(moment: dt.datetime, timezone: str) -> dt.date:
    return moment.astimezone(ZoneInfo(timezone)).date()


def local_today(timezone: str) -> dt.date:
    return local_date(now(), timezone)


def start_of_local_day(day: dt.date, timezone: str) -> dt.datetime:
    """The UTC moment the given local day begins (a deadline day ends when the next begins)."""
    local = dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(timezone))
    return local.astimezone(dt.UTC)
