"""Dutch working days and deadlines, after the Algemene termijnenwet.

Everything here works on `date`s: the hub converts moments to Europe/Amsterdam dates first.
"""

from datetime import date, timedelta
from functools import cache

from journeys.model import Duration

_ONE_DAY = timedelta(days=1)
_SATURDAY = 5
_SUNDAY = 6


def easter_sunday(year: int) -> date:
    """Easter Sunday in the Gregorian calendar (the anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    leap = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * leap) // 451
    month, day = divmod(h + leap - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _monarchs_birthday(year: int) -> date:
    # King's Day since 2014; Queen's Day before. Either moves to the Saturday before when it
    # falls on a Sunday. Correct from 1980 on, which is as far back as any case will go.
    day = date(year, 4, 27) if year >= 2014 else date(year, 4, 30)
    return day - _ONE_DAY if day.weekday() == _SUNDAY else day


@cache
def _holidays(year: int) -> frozenset[date]:
    easter = easter_sunday(year)
    return frozenset(
        {
            date(year, 1, 1),
            easter - timedelta(days=2),
            easter,
            easter + timedelta(days=1),
            _monarchs_birthday(year),
            date(year, 5, 5),
            easter + timedelta(days=39),
            easter + timedelta(days=49),
            easter + timedelta(days=50),
            date(year, 12, 25),
            date(year, 12, 26),
        }
    )


def dutch_public_holidays(year: int) -> set[date]:
    """The public holidays that stop a Dutch legal deadline in `year`.

    New Year's Day, Good Friday, Easter Sunday and Monday, King's Day (27 April, or 26 April
    when the 27th is a Sunday), Liberation Day (5 May, every year), Ascension Day, Whit Sunday
    and Monday, and both Christmas days. Saturdays and Sundays are not listed: they are never
    working days anyway.
    """
    return set(_holidays(year))


def is_working_day(day: date) -> bool:
    """Monday to Friday and not a Dutch public holiday."""
    return day.weekday() < _SATURDAY and day not in _holidays(day.year)


def next_working_day(day: date) -> date:
    """`day` itself when it is a working day, else the first working day after it."""
    while not is_working_day(day):
        day += _ONE_DAY
    return day


def add_duration(start: date, duration: Duration, *, roll_forward: bool = True) -> date:
    """The date `duration` after `start`.

    Working days are counted one by one from the day after `start`, skipping weekends and
    public holidays. Calendar days are added as they are; when the end falls on a weekend or
    public holiday it moves to the next working day, as the Algemene termijnenwet moves a
    legal deadline. Pass `roll_forward=False` to get the plain end, for adding several
    durations in a row and rolling only the last.
    """
    if duration.unit == "calendar":
        end = start + timedelta(days=duration.days)
        return next_working_day(end) if roll_forward else end
    day, counted = start, 0
    while counted < duration.days:
        day += _ONE_DAY
        if is_working_day(day):
            counted += 1
    return next_working_day(day) if roll_forward else day
