"""The letter layout: the address in the envelope window, Dutch characters, pages."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest

from channels.letter import layout
from channels.letter.layout import Fonts, Letter, address_lines, long_date, printable, render_pdf
from tests.letters.reading import find, page_count, pdf_text, placed_text


def letter(**changes: object) -> Letter:
    values: dict[str, object] = {
        "sender": "Dienst Toeslagen",
        "recipient_name": "Zoë Jansen",
        "address": "Oudegracht 101\n3511 AB Utrecht",
        "date": "3 februari 2026",
        "subject": "Uw huurtoeslag — HU-2026-000001",
        "body": "Geachte Zoë Jansen,\n\nWij betalen € 120,50 terug.\nDat is geregeld.",
        "reference": "HU-2026-000001",
        "contact": "Sanne de Wit",
        "portal_url": "https://hub.example.nl/cases/1",
    }
    values.update(changes)
    return Letter(**values)  # type: ignore[arg-type]


def test_dates_are_written_out_in_the_letters_language() -> None:
    assert long_date(dt.date(2026, 2, 3), "nl") == "3 februari 2026"
    assert long_date(dt.date(2026, 12, 31), "en") == "31 December 2026"


def test_the_address_sits_in_the_window_of_a_din_5008_envelope() -> None:
    placed = placed_text(render_pdf(letter()))
    name, street, town = (
        find(placed, t) for t in ("Zoë Jansen", "Oudegracht 101", "3511 AB Utrecht")
    )
    for line in (name, street, town):
        # The window: 20 to 105 mm from the left, its address zone 62.7 to 90 mm from the top.
        assert 20 <= line.x <= 105
        assert 62.7 <= line.y <= 90
    assert name.y < street.y < town.y
    # The sender's return line sits above the address, in the window's upper zone.
    returns = [p for p in placed if p.text == "Dienst Toeslagen" and 45 <= p.y < 62.7]
    assert returns and 20 <= returns[0].x <= 105
    # Date and reference stand to the right of the window, not in it.
    assert find(placed, "3 februari 2026").x > 105
    assert find(placed, "HU-2026-000001").x > 105


def test_dutch_characters_and_line_breaks_are_kept() -> None:
    text = pdf_text(render_pdf(letter()))
    assert "Zoë Jansen" in text
    assert "Wij betalen € 120,50 terug.\nDat is geregeld." in text
    assert "Uw zaak online: https://hub.example.nl/cases/1" in text
    assert "Pagina 1 van 1" in text


def test_english_labels() -> None:
    text = pdf_text(render_pdf(letter(language="en", date="3 February 2026")))
    assert "Our reference" in text and "Date" in text and "Page 1 of 1" in text


def test_a_long_letter_runs_onto_numbered_pages() -> None:
    body = "\n\n".join(f"Alinea {n}: " + "tekst met een ë " * 40 for n in range(1, 13))
    content = render_pdf(letter(body=body + "\n\nMet vriendelijke groet"))
    pages = page_count(content)
    assert pages >= 2
    text = pdf_text(content)
    assert f"Pagina {pages} van {pages}" in text
    assert "Alinea 12:" in text and text.rstrip().find("Met vriendelijke groet") > 0


def test_without_dejavu_the_core_font_still_prints_dutch_characters(tmp_path: Path) -> None:
    assert Fonts.installed(tmp_path) is None
    content = render_pdf(letter(body="Zoë betaalt € 5 🙂"), embed=False)
    text = pdf_text(content)
    assert "Zoë betaalt € 5 ?" in text


def test_missing_fonts_are_warned_about_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(layout, "DEJAVU_DIR", tmp_path)
    monkeypatch.setattr(layout.Fonts, "installed", classmethod(lambda cls, d=tmp_path: None))
    monkeypatch.setattr(layout, "_warned_fallback", False)
    with caplog.at_level(logging.WARNING, logger="channels.letter"):
        render_pdf(letter())
        render_pdf(letter())
    warnings = [r for r in caplog.records if "DejaVu Sans not found" in r.getMessage()]
    assert len(warnings) == 1


def test_an_address_too_long_for_the_window_is_joined_not_cut() -> None:
    lines = address_lines("A", "1\n2\n3\n4\n5\n6\n7")
    assert lines == ["A", "1", "2", "3", "4", "5, 6, 7"]


def test_control_characters_are_dropped_but_line_breaks_kept() -> None:
    assert printable("a\x07b\r\nc\td\u202e") == "ab\nc    d"
