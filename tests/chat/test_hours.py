"""Opening hours: open now, or when the chat opens next (in the hub's time zone)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from hub.chat.hours import closed_notice, opening

AMS = ZoneInfo("Europe/Amsterdam")
WEEKDAYS = {day: [["08:30", "12:00"], ["13:00", "17:00"]] for day in ("mon", "tue", "wed", "thu")}
WEEK = {**WEEKDAYS, "fri": [["08:30", "12:00"]]}


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=AMS)


@pytest.mark.parametrize(
    ("now", "is_open", "next_opening"),
    [
        (local(2026, 11, 30, 9, 0), True, None),  # Monday morning
        (local(2026, 11, 30, 8, 29), False, local(2026, 11, 30, 8, 30)),
        (local(2026, 11, 30, 12, 30), False, local(2026, 11, 30, 13, 0)),  # lunch
        (local(2026, 11, 30, 17, 0), False, local(2026, 12, 1, 8, 30)),  # closing time
        (local(2026, 12, 4, 14, 0), False, local(2026, 12, 7, 8, 30)),  # Friday afternoon
        (local(2026, 12, 5, 10, 0), False, local(2026, 12, 7, 8, 30)),  # Saturday
        # Christmas (Friday) and Boxing Day are closed; after Thursday 24th: Monday 28th.
        (local(2026, 12, 24, 18, 0), False, local(2026, 12, 28, 8, 30)),
        # The clocks go back on 25 October 2026; hours stay local.
        (local(2026, 10, 24, 12, 0), False, local(2026, 10, 26, 8, 30)),
    ],
)
def test_open_or_the_next_opening(
    now: dt.datetime, is_open: bool, next_opening: dt.datetime | None
) -> None:
    found = opening(WEEK, now.astimezone(dt.UTC), "Europe/Amsterdam")
    assert found.open is is_open
    assert found.next_opening == next_opening
    if next_opening is not None:
        assert found.next_opening is not None and found.next_opening.utcoffset() == (
            next_opening.utcoffset()
        )


def test_an_agency_without_hours_is_always_open_and_bad_entries_open_nothing() -> None:
    assert opening({}, dt.datetime.now(dt.UTC), "Europe/Amsterdam").open
    broken = {"mon": [["9", "x"], ["17:00", "09:00"], "08:00"]}
    found = opening(broken, local(2026, 11, 30, 10, 0), "Europe/Amsterdam")
    assert (found.open, found.next_opening) == (False, None)


def test_the_closed_notice_says_when_and_offers_other_channels() -> None:
    monday = local(2026, 11, 30, 8, 30)
    assert closed_notice(monday, ["email", "sms"], "nl") == (
        "De chat is nu gesloten. U krijgt antwoord vanaf maandag 30 november om 08:30. "
        "Wilt u het antwoord liever per e-mail of sms? Kies dat hieronder."
    )
    assert closed_notice(monday, [], "en") == (
        "The chat is closed now. Expect an answer from Monday 30 November at 08:30."
    )
    assert "as soon as we can" in closed_notice(None, ["sms"], "en")
