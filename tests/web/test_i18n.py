"""The catalogues: every text the pages show has its Dutch translation, and the two languages
really differ on the page."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

from hub.web.i18n import catalogue, local_time, long_date, translations

ROOT = Path(__file__).resolve().parents[2]


def extracted() -> set[str]:
    """The message ids ``pybabel extract -F babel.cfg -k mark`` finds."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    keywords = {**DEFAULT_KEYWORDS, "mark": None}
    return {
        message if isinstance(message, str) else message[0]
        for _, _, message, _, _ in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords
        )
    }


def test_every_text_on_the_pages_has_a_dutch_translation() -> None:
    dutch = catalogue("nl")
    found = extracted()
    assert len(found) > 50
    untranslated = sorted(
        msgid
        for msgid in found
        if msgid not in dutch
        or dutch[msgid].fuzzy  # a guess by pybabel update: the pages do not show it
        or not dutch[msgid].string
        or (isinstance(dutch[msgid].string, tuple) and not all(dutch[msgid].string))
    )
    assert untranslated == [], "run pybabel extract and update (README), then translate"
    assert translations("nl").gettext("My cases") == "Mijn zaken"
    assert translations("en").gettext("My cases") == "My cases"
    assert translations("nl").ngettext("%(num)d day", "%(num)d days", 2) == "%(num)d dagen"


def test_dates_and_times_read_as_people_write_them() -> None:
    day = dt.date(2026, 5, 14)
    moment = dt.datetime(2026, 5, 14, 7, 30, tzinfo=dt.UTC)  # 09:30 in Amsterdam, summer
    assert long_date(day, "nl") == "14 mei 2026"
    assert long_date(day, "en") == "14 May 2026"
    assert local_time(moment, "nl", "Europe/Amsterdam") == "14 mei 2026 om 09:30"
    assert local_time(moment, "en", "Europe/Amsterdam") == "14 May 2026, 09:30"
