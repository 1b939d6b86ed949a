"""The pages' languages: Dutch by default, English too, from gettext catalogues kept as
``.po`` files under ``hub/web/locale/``.

The ``.po`` files are compiled in memory when the hub starts (with Babel), so there is no
build step and no compiled ``.mo`` file to forget: change a ``.po`` file, restart, and the
pages show it. Message ids are the English texts; the Dutch catalogue translates them, and
the English one may leave them as they are.
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
from functools import cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

Language = Literal["nl", "en"]
LANGUAGES: tuple[Language, ...] = ("nl", "en")
DEFAULT_LANGUAGE: Language = "nl"
LANGUAGE_COOKIE = "hub_lang"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"


def language(value: str | None) -> Language:
    """``value`` if it names a language the pages speak, else Dutch."""
    return "en" if value == "en" else DEFAULT_LANGUAGE


@cache
def translations(lang: Language) -> gettext.GNUTranslations:
    """The catalogue for ``lang``, compiled from its ``.po`` file once per process."""
    catalog = catalogue(lang)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def catalogue(lang: Language) -> Catalog:
    """Every translation of ``lang``, as its ``.po`` file holds it."""
    with (LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as po:
        return read_po(po, locale=lang, domain=DOMAIN)


def mark(message: str) -> str:
    """Marks a text in Python code for extraction; the page translates it when it shows it."""
    return message


def _locale(lang: Language) -> str:
    # British English writes "14 May 2026", as the journeys' own texts do.
    return "en_GB" if lang == "en" else "nl_NL"


def long_date(day: dt.date | None, lang: Language) -> str:
    """A date as people write it: "14 mei 2026", "14 May 2026"."""
    return format_date(day, format="long", locale=_locale(lang)) if day else ""


def local_time(moment: dt.datetime | None, lang: Language, timezone: str) -> str:
    """A moment in the hub's time zone: "14 mei 2026 om 09:30", "14 May 2026, 09:30"."""
    if moment is None:
        return ""
    local = moment.astimezone(ZoneInfo(timezone))
    day = format_date(local.date(), format="long", locale=_locale(lang))
    clock = format_datetime(local, "HH:mm", tzinfo=ZoneInfo(timezone), locale=_locale(lang))
    return f"{day} om {clock}" if lang == "nl" else f"{day}, {clock}"
