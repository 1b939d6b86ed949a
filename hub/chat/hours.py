"""Opening hours of an agency's chat: open now, or when it opens next. Pure: the caller gives
the moment, so every case can be tested exactly."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from journeys.calendar import dutch_public_holidays

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# How far ahead to look for an opening; an agency closed for longer is "closed until further
# notice" (next_opening None).
LOOKAHEAD_DAYS = 21

DAY_NAMES = {
    "nl": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
MONTH_NAMES = {
    "nl": [
        "januari",
        "februari",
        "maart",
        "april",
        "mei",
        "juni",
        "juli",
        "augustus",
        "september",
        "oktober",
        "november",
        "december",
    ],
    "en": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
}


@dataclass(frozen=True)
class Opening:
    open: bool
    next_opening: dt.datetime | None  # in the hub's time zone; None when open now


def _intervals(hours: dict[str, Any], day: dt.date) -> list[tuple[dt.time, dt.time]]:
    found: list[tuple[dt.time, dt.time]] = []
    for pair in hours.get(DAYS[day.weekday()], []) or []:
        try:
            start, end = (dt.time.fromisoformat(str(value)) for value in pair)
        except (TypeError, ValueError):
            continue  # a malformed entry opens nothing
        if start < end:
            found.append((start, end))
    return sorted(found)


def opening(hours: dict[str, Any], now: dt.datetime, timezone: str) -> Opening:
    """Whether the chat is open at ``now`` by ``hours`` (``{"mon": [["08:30", "17:00"]], …}``
    in ``timezone``), else the next moment it opens.

    An agency that registered no hours at all is taken to be always open: its chat queue is
    watched whenever it is staffed. A registered week closes on the days it leaves out and
    on Dutch public holidays.
    """
    if not any(hours.get(day) for day in DAYS):
        return Opening(open=True, next_opening=None)
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    for offset in range(LOOKAHEAD_DAYS):
        day = local.date() + dt.timedelta(days=offset)
        if day in dutch_public_holidays(day.year):
            continue
        for start, end in _intervals(hours, day):
            opens = dt.datetime.combine(day, start, tzinfo=zone)
            closes = dt.datetime.combine(day, end, tzinfo=zone)
            if opens <= local < closes:
                return Opening(open=True, next_opening=None)
            if opens > local:
                return Opening(open=False, next_opening=opens)
    return Opening(open=False, next_opening=None)


def when_text(moment: dt.datetime, lang: str) -> str:
    """ "maandag 30 november om 08:30" / "Monday 30 November at 08:30"."""
    lang = lang if lang in DAY_NAMES else "nl"
    day = DAY_NAMES[lang][moment.weekday()]
    month = MONTH_NAMES[lang][moment.month - 1]
    at = "om" if lang == "nl" else "at"
    return f"{day} {moment.day} {month} {at} {moment:%H:%M}"


def closed_notice(next_opening: dt.datetime | None, reply_channels: list[str], lang: str) -> str:
    """What the citizen reads when they start a chat outside opening hours."""
    names = {"email": ("e-mail", "email"), "sms": ("sms", "text message")}
    en = lang == "en"
    if next_opening is None:
        text = (
            "The chat is closed for now. We will answer as soon as we can."
            if en
            else "De chat is nu gesloten. Wij antwoorden zo snel als we kunnen."
        )
    else:
        when = when_text(next_opening, lang)
        text = (
            f"The chat is closed now. Expect an answer from {when}."
            if en
            else f"De chat is nu gesloten. U krijgt antwoord vanaf {when}."
        )
    if reply_channels:
        options = (" or " if en else " of ").join(names[c][1 if en else 0] for c in reply_channels)
        text += (
            f" Would you rather have the answer by {options}? Choose it below."
            if en
            else f" Wilt u het antwoord liever per {options}? Kies dat hieronder."
        )
    return text
