"""The letter layout: one A4 page design for every letter the hub prints.

The recipient's address sits where a window envelope shows it — DIN 5008 form B: the
address field 20 mm from the left edge and 45 mm from the top, 85 by 45 mm, its upper
17.7 mm for the sender's return line and the lower 27.3 mm for up to six address lines —
which also fits the Dutch left-window envelopes. Fold marks at 105 and 210 mm and a punch
mark at 148.5 mm let a mail room fold it in three by hand.

Text is drawn with DejaVu Sans from Debian's ``fonts-dejavu-core`` (embedded, subset), so
Dutch characters (ë, é, €) print as typed. Where that font is not installed the letter falls
back to the PDF core font Helvetica in Windows-1252, which still has ë, é and €; characters
outside it print as "?" and a warning says so in the log, once.

This module is pure: a :class:`Letter` in, PDF bytes out, no database and no files written.
"""

from __future__ import annotations

import datetime as dt
import logging
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import TTFFont

log = logging.getLogger("channels.letter")

DEJAVU_DIR = Path("/usr/share/fonts/truetype/dejavu")
CORE_FONT = "helvetica"
CORE_ENCODING = "windows-1252"

# Millimetres on A4 (210 by 297).
LEFT = 25.0
RIGHT = 20.0
ADDRESS_X = 25.0  # the address field starts at 20 mm, its text 5 mm in
RETURN_LINE_Y = 57.0  # bottom of the 17.7 mm return zone (45 → 62.7 mm)
ADDRESS_Y = 63.0  # the address zone: 62.7 → 90 mm
ADDRESS_WIDTH = 80.0
ADDRESS_LINES = 6
ADDRESS_LINE_HEIGHT = 4.5
INFO_X = 125.0
INFO_Y = 50.0
SUBJECT_Y = 103.4
BODY_LINE_HEIGHT = 5.2
FOOTER_Y = 279.0
BOTTOM_MARGIN = 25.0

LABELS = {
    "nl": {
        "date": "Datum",
        "reference": "Ons kenmerk",
        "contact": "Contactpersoon",
        "page": "Pagina {page} van {pages}",
        "online": "Uw zaak online",
    },
    "en": {
        "date": "Date",
        "reference": "Our reference",
        "contact": "Contact",
        "page": "Page {page} of {pages}",
        "online": "Your case online",
    },
}

MONTHS = {
    "nl": "januari februari maart april mei juni juli augustus september oktober november december",
    "en": "January February March April May June July August September October November December",
}


def long_date(day: dt.date, language: str) -> str:
    """A date as a letter writes it: "3 februari 2026" in Dutch, "3 February 2026" in English."""
    months = MONTHS["en" if language == "en" else "nl"].split()
    return f"{day.day} {months[day.month - 1]} {day.year}"


@dataclass(frozen=True)
class Letter:
    """Everything printed on a letter. ``body`` is the text below the subject (salutation to
    signature), its line breaks kept; ``address`` the postal address, one line per line."""

    sender: str
    recipient_name: str
    address: str
    date: str
    subject: str
    body: str
    language: str = "nl"
    reference: str | None = None
    contact: str | None = None
    portal_url: str | None = None
    created_at: dt.datetime | None = None


@dataclass(frozen=True)
class Fonts:
    """The font files to embed; ``None`` for the core-font fallback."""

    regular: Path
    bold: Path

    @classmethod
    def installed(cls, directory: Path = DEJAVU_DIR) -> Fonts | None:
        regular, bold = directory / "DejaVuSans.ttf", directory / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return cls(regular, bold)
        return None


_warned_fallback = False


def address_lines(name: str, address: str) -> list[str]:
    """The lines in the envelope window: the name, then the address; more than the six lines
    that fit are joined into the last one rather than cut off."""
    lines = [line.strip() for line in [name, *address.splitlines()] if line.strip()]
    if len(lines) > ADDRESS_LINES:
        lines = [*lines[: ADDRESS_LINES - 1], ", ".join(lines[ADDRESS_LINES - 1 :])]
    return lines


def printable(text: str) -> str:
    """Text without control characters (tabs become spaces; line breaks stay)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    return "".join(ch for ch in text if ch == "\n" or not unicodedata.category(ch).startswith("C"))


class _LetterPDF(FPDF):
    def __init__(self, letter: Letter, fonts: Fonts | None) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.letter = letter
        self.labels = LABELS["en" if letter.language == "en" else "nl"]
        if fonts is not None:
            self.add_font("letter", "", fonts.regular)
            self.add_font("letter", "B", fonts.bold)
            self.letter_font = "letter"
        else:
            self.core_fonts_encoding = CORE_ENCODING
            self.letter_font = CORE_FONT
        self.set_margins(LEFT, 20.0, RIGHT)
        self.set_auto_page_break(auto=True, margin=BOTTOM_MARGIN)
        self.alias_nb_pages()

    def fit(self, text: str) -> str:
        """``text`` as the current font can draw it (characters it lacks become "?")."""
        text = printable(text)
        font = self.current_font
        if not isinstance(font, TTFFont):
            return text.encode(CORE_ENCODING, errors="replace").decode(CORE_ENCODING)
        cmap = font.cmap
        return "".join(ch if ch == "\n" or ord(ch) in cmap else "?" for ch in text)

    def write_at(self, x: float, y: float, text: str, *, size: float, bold: bool = False) -> None:
        self.set_font(self.letter_font, "B" if bold else "", size)
        self.text(x, y, self.fit(text))

    def header(self) -> None:
        if self.page_no() == 1:
            self.write_at(LEFT, 25.0, self.letter.sender, size=16, bold=True)
        else:
            line = self.letter.sender
            if self.letter.reference:
                line += f"  ·  {self.letter.reference}"
            self.write_at(LEFT, 15.0, line, size=8)
            self.set_y(25.0)
            return
        self.marks()

    def marks(self) -> None:
        self.set_draw_color(120)
        self.set_line_width(0.2)
        for y, length in ((105.0, 5.0), (148.5, 7.0), (210.0, 5.0)):
            self.line(3.5, y, 3.5 + length, y)

    def footer(self) -> None:
        self.set_draw_color(180)
        self.line(LEFT, FOOTER_Y - 4.0, self.w - RIGHT, FOOTER_Y - 4.0)
        if self.letter.portal_url:
            online = f"{self.labels['online']}: {self.letter.portal_url}"
            self.write_at(LEFT, FOOTER_Y, online, size=8)
        page = self.labels["page"].format(page=self.page_no(), pages=self.str_alias_nb_pages)
        self.set_font(self.letter_font, "", 8)
        # A cell, not text(): the page count alias is filled in only inside cells.
        self.set_xy(LEFT, FOOTER_Y - 3.0)
        self.cell(0, 4.0, page, align="R")

    def first_page(self) -> None:
        letter = self.letter
        self.add_page()
        # The return line: small and underlined, so the post office does not read it as
        # the recipient.
        self.set_font(self.letter_font, "U", 7)
        self.text(ADDRESS_X, RETURN_LINE_Y, self.fit(letter.sender)[:70])
        self.set_xy(ADDRESS_X, ADDRESS_Y)
        self.set_font(self.letter_font, "", 10)
        for line in address_lines(letter.recipient_name, letter.address):
            self.set_x(ADDRESS_X)
            self.cell(
                ADDRESS_WIDTH,
                ADDRESS_LINE_HEIGHT,
                self.fit(line),
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )
        info = [(self.labels["date"], letter.date)]
        if letter.reference:
            info.append((self.labels["reference"], letter.reference))
        if letter.contact:
            info.append((self.labels["contact"], letter.contact))
        y = INFO_Y
        for label, value in info:
            self.write_at(INFO_X, y, label, size=8)
            self.write_at(INFO_X, y + 4.5, value, size=10)
            y += 11.0

    def content(self) -> None:
        self.set_xy(LEFT, SUBJECT_Y)
        self.set_font(self.letter_font, "B", 11)
        self.multi_cell(0, BODY_LINE_HEIGHT + 0.6, self.fit(self.letter.subject), align="L")
        self.ln(BODY_LINE_HEIGHT)
        self.set_font(self.letter_font, "", 11)
        self.multi_cell(0, BODY_LINE_HEIGHT, self.fit(self.letter.body), align="L")


def render_pdf(letter: Letter, fonts: Fonts | None = None, *, embed: bool = True) -> bytes:
    """The letter as a print-ready A4 PDF.

    ``fonts`` defaults to DejaVu Sans where it is installed; ``embed=False`` forces the core
    font fallback (used where no Unicode font exists, and by tests of that path).
    """
    global _warned_fallback
    chosen = (fonts or Fonts.installed()) if embed else None
    if chosen is None and embed and not _warned_fallback:
        _warned_fallback = True
        log.warning(
            "DejaVu Sans not found in %s: letters use Helvetica (Windows-1252); characters "
            "outside it print as '?'. Install fonts-dejavu-core.",
            DEJAVU_DIR,
        )
    pdf = _LetterPDF(letter, chosen)
    pdf.set_title(printable(letter.subject))
    pdf.set_author(printable(letter.sender))
    pdf.set_lang("en" if letter.language == "en" else "nl")
    pdf.set_creation_date(letter.created_at or dt.datetime.now(dt.UTC))
    pdf.first_page()
    pdf.content()
    return bytes(pdf.output())
