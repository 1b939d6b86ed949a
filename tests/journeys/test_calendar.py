from datetime import date, timedelta

import pytest

from journeys.calendar import (
    add_duration,
    dutch_public_holidays,
    easter_sunday,
    is_working_day,
    next_working_day,
)
from journeys.model import Duration


def working(days: int) -> Duration:
    return Duration(days=days, unit="working")


def calendar(days: int) -> Duration:
    return Duration(days=days, unit="calendar")


@pytest.mark.parametrize(
    ("year", "easter"),
    [
        (2000, date(2000, 4, 23)),
        (2019, date(2019, 4, 21)),
        (2024, date(2024, 3, 31)),
        (2025, date(2025, 4, 20)),
        (2026, date(2026, 4, 5)),
        (2027, date(2027, 3, 28)),
        (2038, date(2038, 4, 25)),
    ],
)
def test_easter_sunday(year: int, easter: date) -> None:
    assert easter_sunday(year) == easter


def test_holidays_2027_follow_easter_on_28_march() -> None:
    holidays = dutch_public_holidays(2027)
    assert {
        date(2027, 3, 26),  # Good Friday
        date(2027, 3, 28),
        date(2027, 3, 29),
        date(2027, 5, 6),  # Ascension: Easter + 39
        date(2027, 5, 16),
        date(2027, 5, 17),
    } <= holidays


def test_kings_day_moves_to_saturday_when_27_april_is_a_sunday() -> None:
    assert date(2025, 4, 27).weekday() == 6
    assert date(2025, 4, 26) in dutch_public_holidays(2025)
    assert date(2025, 4, 27) not in dutch_public_holidays(2025)
    assert date(2026, 4, 27) in dutch_public_holidays(2026)
    assert date(2026, 4, 26) not in dutch_public_holidays(2026)


def test_queens_day_before_2014() -> None:
    assert date(2013, 4, 30) in dutch_public_holidays(2013)
    assert date(2013, 4, 27) not in dutch_public_holidays(2013)


def test_full_list_for_2026() -> None:
    assert dutch_public_holidays(2026) == {
        date(2026, 1, 1),
        date(2026, 4, 3),
        date(2026, 4, 5),
        date(2026, 4, 6),
        date(2026, 4, 27),
        date(2026, 5, 5),
        date(2026, 5, 14),  # Ascension
        date(2026, 5, 24),
        date(2026, 5, 25),
        date(2026, 12, 25),
        date(2026, 12, 26),
    }


def test_ascension_on_liberation_day_counts_once() -> None:
    assert len(dutch_public_holidays(2016)) == 10
    assert date(2016, 5, 5) in dutch_public_holidays(2016)


def test_changing_the_returned_set_changes_nothing() -> None:
    dutch_public_holidays(2026).add(date(2026, 6, 1))
    assert is_working_day(date(2026, 6, 1))


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 5, 13), True),  # Wednesday
        (date(2026, 5, 14), False),  # Ascension
        (date(2026, 5, 16), False),  # Saturday
        (date(2026, 5, 17), False),  # Sunday
        (date(2025, 5, 5), False),  # Liberation Day, a Monday
        (date(2026, 4, 27), False),  # King's Day, a Monday
        (date(2026, 12, 28), True),
    ],
)
def test_is_working_day(day: date, expected: bool) -> None:
    assert is_working_day(day) is expected


@pytest.mark.parametrize(
    ("start", "days", "end"),
    [
        (date(2026, 5, 11), 5, date(2026, 5, 19)),  # over Ascension and a weekend
        (date(2026, 5, 13), 1, date(2026, 5, 15)),
        (date(2027, 3, 25), 5, date(2027, 4, 5)),  # over Good Friday and Easter Monday
        (date(2026, 4, 24), 1, date(2026, 4, 28)),  # over a weekend and King's Day
        (date(2025, 5, 2), 1, date(2025, 5, 6)),  # over Liberation Day
        (date(2026, 12, 24), 3, date(2026, 12, 30)),  # over Christmas
        (date(2026, 12, 30), 2, date(2027, 1, 4)),  # over New Year's Day
        (date(2026, 5, 15), 0, date(2026, 5, 15)),
    ],
)
def test_add_working_days(start: date, days: int, end: date) -> None:
    assert add_duration(start, working(days)) == end


def test_working_days_counted_are_exactly_the_working_days_between() -> None:
    start = date(2025, 1, 1)
    for offset in range(0, 2 * 365, 3):
        begin = start + timedelta(days=offset)
        for days in (1, 5, 10):
            end = add_duration(begin, working(days))
            assert is_working_day(end)
            between = [begin + timedelta(days=i) for i in range(1, (end - begin).days + 1)]
            assert sum(is_working_day(d) for d in between) == days


def test_calendar_days_end_on_a_working_day_unchanged() -> None:
    assert add_duration(date(2026, 1, 5), calendar(56)) == date(2026, 3, 2)


def test_calendar_deadline_on_a_holiday_weekend_moves_to_next_working_day() -> None:
    # 27 March 2027 is a Saturday, followed by Easter Sunday and Easter Monday.
    assert add_duration(date(2027, 3, 1), calendar(26)) == date(2027, 3, 30)
    assert add_duration(date(2027, 3, 1), calendar(26), roll_forward=False) == date(2027, 3, 27)


def test_calendar_deadline_on_kings_day_moves_a_day() -> None:
    assert add_duration(date(2026, 3, 16), calendar(42)) == date(2026, 4, 28)


def test_zero_days_from_a_weekend() -> None:
    saturday = date(2026, 5, 16)
    assert add_duration(saturday, working(0)) == date(2026, 5, 18)
    assert add_duration(saturday, working(0), roll_forward=False) == saturday
    assert next_working_day(date(2026, 5, 13)) == date(2026, 5, 13)
