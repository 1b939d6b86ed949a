"""A letter's words: the templates per language around the message."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest

from channels.letter.compose import TEMPLATES, compose_letter, render_text
from hub.ports import Outbound
from journeys.engine import NOTIFY_TEMPLATES


def outbound(**changes: object) -> Outbound:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "channel": "letter",
        "recipient": "Oudegracht 101\n3511 AB Utrecht",
        "subject": "Vraag — VR-2026-000001",
        "body": "Regel één\nRegel twee",
        "language": "nl",
        "template": "reply",
        "context": {
            "case_reference": "VR-2026-000001",
            "case_title": "Vraag",
            "agency_name": "Toeslagen",
            "party_name": "Zoë Jansen",
            "case_path": "/cases/abc",
            "author_name": "Sanne de Wit",
        },
    }
    values.update(changes)
    return Outbound(**values)  # type: ignore[arg-type]


def test_a_reply_letter_in_dutch() -> None:
    letter = compose_letter(outbound(), today=dt.date(2026, 3, 9), base_url="https://hub.nl/")
    assert letter.date == "9 maart 2026"
    assert letter.body.startswith("Geachte Zoë Jansen,\n\nMet deze brief beantwoorden wij")
    assert "Regel één\nRegel twee" in letter.body
    assert letter.body.rstrip().endswith("Met vriendelijke groet,\n\nSanne de Wit\nToeslagen")
    assert letter.portal_url == "https://hub.nl/cases/abc"
    assert letter.reference == "VR-2026-000001"
    assert letter.address == "Oudegracht 101\n3511 AB Utrecht"


def test_a_reply_letter_in_english() -> None:
    letter = compose_letter(
        outbound(language="en"), today=dt.date(2026, 3, 9), base_url="https://hub.nl"
    )
    assert letter.date == "9 March 2026"
    assert letter.body.startswith("Dear Zoë Jansen,")
    assert "Kind regards," in letter.body


@pytest.mark.parametrize("language", ["nl", "en"])
# Every notice the journeys send: one added there needs its letter here.
@pytest.mark.parametrize("name", NOTIFY_TEMPLATES)
def test_every_notice_has_its_own_letter(name: str, language: str) -> None:
    assert (TEMPLATES / f"{name}.{language}.txt.j2").is_file()
    generic = render_text("letter", language, {**outbound().context, "body": "X"})
    text = render_text(name, language, {**outbound().context, "body": "Status: X"})
    assert "Status: X" in text
    assert text != generic  # says what the notice is about


def test_an_unknown_or_odd_template_name_gets_the_generic_letter() -> None:
    values = {**outbound().context, "body": "Inhoud"}
    generic = render_text("letter", "nl", values)
    assert render_text("login_code", "nl", values) == generic
    assert render_text("../../etc/passwd", "nl", values) == generic
    assert render_text("reply", "fr", values) == render_text("reply", "nl", values)


def test_what_a_citizen_typed_is_printed_as_typed_not_escaped() -> None:
    letter = compose_letter(
        outbound(body="<b>Tom & Jerry</b> {{ 7*7 }}"), today=dt.date(2026, 1, 1), base_url="x"
    )
    assert "<b>Tom & Jerry</b> {{ 7*7 }}" in letter.body


def test_templates_are_packaged() -> None:
    # pyproject packages channels/*/templates/*: the templates must sit directly in it.
    assert all(p.parent == TEMPLATES for p in Path(TEMPLATES).rglob("*.j2"))
