"""Hostile content in every message template (property-based, with hypothesis): a mail's
HTML part shows what people typed as text, never as markup, its text part and a letter's
text carry it as written, and template syntax in it never runs. An SMS is the typed text
itself (no template), so only its length is checked, elsewhere (tests/sms)."""

from __future__ import annotations

import datetime as dt
import email.policy
import uuid
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

import channels
from channels.email.adapter import MailComposer, render
from channels.letter.compose import compose_letter
from hub.config import Settings
from hub.ports import Outbound
from tests.hardening.test_hostile_pages import PAYLOADS, injected

CHANNELS = Path(channels.__file__).parent
EMAIL_TEMPLATES = sorted(
    {path.name.split(".")[0] for path in (CHANNELS / "email" / "templates").glob("*.j2")}
    - {"layout"}
)
LETTER_TEMPLATES = sorted(
    {
        path.name.split(".")[0]
        for path in (CHANNELS / "letter" / "templates").glob("*.j2")
        if not path.name.startswith("_")
    }
    # The status summary is written from a case's status view, not from a message.
    - {"status_summary"}
)

# What people type: anything, with the payloads mixed in so that every example has some.
typed = st.builds(
    lambda before, payload, after: before + payload + after,
    st.text(max_size=30),
    st.sampled_from(PAYLOADS),
    st.text(max_size=30),
)
one_line = typed.map(lambda text: " ".join(text.split()))


def outbound(template: str, language: str, body: str, subject: str, names: list[str]) -> Outbound:
    case_id = uuid.uuid4()
    return Outbound(
        id=uuid.uuid4(),
        channel="email",
        recipient="jan@example.nl",
        subject=subject,
        body=body,
        language=language,
        template=template,
        case_id=case_id,
        party_id=uuid.uuid4(),
        context={
            "party_name": names[0],
            "author_name": names[1],
            "agency_name": names[2],
            "case_title": names[3],
            "case_reference": "HT-2026-000001",
            "case_path": f"/cases/{case_id}",
        },
    )


def parts(raw: bytes) -> tuple[str, str]:
    mail = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(mail, EmailMessage)
    plain, html = (mail.get_body(preferencelist=(kind,)) for kind in ("plain", "html"))
    assert plain is not None and html is not None
    return plain.get_content(), html.get_content()


def test_there_are_templates_to_try() -> None:
    assert {"reply", "notice"} <= set(EMAIL_TEMPLATES)
    assert {"reply", "letter", "case_decided"} <= set(LETTER_TEMPLATES)


@hypothesis_settings(max_examples=120, deadline=None)
@given(
    template=st.sampled_from(EMAIL_TEMPLATES),
    language=st.sampled_from(["nl", "en"]),
    body=typed,
    subject=one_line,
    names=st.lists(one_line, min_size=4, max_size=4),
)
def test_a_mail_shows_what_was_typed_as_text(
    template: str, language: str, body: str, subject: str, names: list[str]
) -> None:
    message = outbound(template, language, body, subject, names)
    settings = Settings(environment="test")
    plain, html = parts(MailComposer(settings).compose(message).data)

    assert injected(html) == []
    assert "hostile49" not in plain and "hostile49" not in html
    # The text part carries the first line of the body as it was typed.
    first_line = body.strip().splitlines()[0].strip() if body.strip() else ""
    assert " ".join(first_line.split()) in " ".join(plain.split())


@hypothesis_settings(max_examples=60, deadline=None)
@given(
    template=st.sampled_from(EMAIL_TEMPLATES),
    language=st.sampled_from(["nl", "en"]),
    values=st.lists(typed, min_size=5, max_size=5),
)
def test_the_mail_templates_escape_every_value_they_show(
    template: str, language: str, values: list[str]
) -> None:
    context = dict(
        zip(
            ("body", "subject", "party_name", "author_name", "agency_name"),
            values,
            strict=True,
        ),
        case_title=values[0],
        case_reference=values[1],
        portal_url="https://hub.example.nl/cases/1",
    )
    _, html = render(template, language, context)
    assert injected(html) == []


@hypothesis_settings(max_examples=120, deadline=None)
@given(
    template=st.sampled_from(LETTER_TEMPLATES),
    language=st.sampled_from(["nl", "en"]),
    body=typed,
    subject=one_line,
    names=st.lists(one_line, min_size=4, max_size=4),
)
def test_a_letter_carries_what_was_typed_and_runs_none_of_it(
    template: str, language: str, body: str, subject: str, names: list[str]
) -> None:
    message = outbound(template, language, body, subject, names)
    letter = compose_letter(message, today=dt.date(2026, 12, 7), base_url="https://hub.example.nl")

    assert "hostile49" not in letter.body
    for payload in PAYLOADS:
        if payload in body:
            assert payload in letter.body
