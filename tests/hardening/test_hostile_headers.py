"""Line breaks, written out or encoded, in anything that reaches a mail header: refused at
input with 422 problem details (subjects, party names and addresses, notice subjects, staff
names), and where a value was never typed into the hub (a name from the identity provider,
the sender setting) the mail written still has exactly its own headers, each on its lines."""

from __future__ import annotations

import email.policy
import uuid
from email.parser import BytesParser
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlmodel import select

from channels.email.adapter import MailComposer
from hub.agencies.service import create_staff
from hub.config import Settings
from hub.db import Database
from hub.errors import InvalidInput
from hub.models import Case, Message, Party
from hub.ports import Outbound
from tests.builders import bearer, key_for, make_agency, make_case, make_party, token_for

# A line break in each form that could start a header of its own, now or once decoded.
BREAKS = [
    "\r\nBcc: everyone@example.com",
    "\nBcc: everyone@example.com",
    "\rBcc: everyone@example.com",
    "%0d%0aBcc: everyone@example.com",
    "%0ABcc: everyone@example.com",
    "\u2028Bcc: everyone@example.com",
    "\u2029Bcc: everyone@example.com",
    "\x85Bcc: everyone@example.com",
    "=?utf-8?q?x=0D=0ABcc:_everyone@example.com?=",
    "=?UTF-8?B?eA0KQmNjOiBldmVyeW9uZUBleGFtcGxlLmNvbQ==?=",
    "\x0bBcc: everyone@example.com",
]


def hostile(text: str, index: int) -> str:
    return f"{text}{BREAKS[index]}"


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    detail = response.json()["detail"]
    assert any(word in detail for word in ("line", "control characters", "email")), detail


@pytest.mark.parametrize("index", range(len(BREAKS)))
async def test_a_subject_with_a_line_break_is_refused(
    index: int, client: httpx.AsyncClient, database: Database
) -> None:
    async with database.session() as session:
        await make_agency(session)
        party = await make_party(session, email="jan@example.nl")
        case = await make_case(session, party)
    key = await key_for(database, "toeslagen")

    response = await client.post(
        f"/api/cases/{case.id}/messages",
        json={"body": "Uw stukken zijn binnen.", "subject": hostile("Uw vraag", index)},
        headers=bearer(key),
    )

    assert_refused(response)
    async with database.session() as session:
        assert (await session.exec(select(Message))).all() == []


@pytest.mark.parametrize("index", range(len(BREAKS)))
async def test_a_party_name_or_email_with_a_line_break_is_refused(
    index: int, client: httpx.AsyncClient, database: Database
) -> None:
    async with database.session() as session:
        await make_agency(session)
    key = await key_for(database, "toeslagen")
    party = {"bsn": "111222333", "name": "Jan Jansen", "email": "jan@example.nl"}

    for field, value in (("name", "Jan Jansen"), ("email", "jan@example.nl")):
        opened = await client.post(
            "/api/cases",
            json={"journey": "vraag", "party": {**party, field: hostile(value, index)}},
            headers=bearer(key),
        )
        assert_refused(opened)
    async with database.session() as session:
        assert (await session.exec(select(Party))).all() == []
        assert (await session.exec(select(Case))).all() == []


async def test_a_notice_subject_never_carries_a_line_break_written_or_filled_in(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.session() as session:
        await make_agency(session)
    key = await key_for(database, "toeslagen")
    url = "/api/notice-templates/rent/email/nl"
    for index in range(len(BREAKS)):
        template = {"subject": hostile("Uw toeslag", index), "body": "Beste {{ name }}"}
        assert_refused(await client.put(url, json=template, headers=bearer(key)))

    template = {"subject": "Uw toeslag, {{ name }}", "body": "Beste {{ name }}"}
    assert (await client.put(url, json=template, headers=bearer(key))).status_code == 200
    for index, brk in enumerate(BREAKS):
        preview = await client.post(
            "/api/notice-templates/rent/preview",
            json={
                "channel": "email",
                "language": "nl",
                "personalisation": {"name": hostile("Jan", index)},
            },
            headers=bearer(key),
        )
        if "%" in brk or "=?" in brk:
            # Encoded, it would survive into the header: refused.
            assert_refused(preview)
        else:
            # A value's own line break is folded into a space, as all its whitespace is (the
            # bulk path folds in SQL alike): the subject stays one line.
            assert preview.status_code == 200, preview.text
            subject = preview.json()["subject"]
            assert subject == " ".join(subject.split()) and "Bcc: everyone" in subject
    # A line break in the body is just a line break.
    fine = await client.post(
        "/api/notice-templates/rent/preview",
        json={"channel": "email", "language": "nl", "personalisation": {"name": "Jan"}},
        headers=bearer(key),
    )
    assert fine.status_code == 200, fine.text


@pytest.mark.parametrize("index", range(len(BREAKS)))
async def test_a_staff_name_with_a_line_break_is_refused(index: int, database: Database) -> None:
    async with database.session() as session:
        await make_agency(session)
        with pytest.raises(InvalidInput):
            await create_staff(
                session,
                agency_id="toeslagen",
                email="sanne@toeslagen.test",
                display_name=hostile("Sanne", index),
            )


EXPECTED_HEADERS = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "content-language",
    "mime-version",
    "content-type",
}


def composed_headers(raw: bytes) -> list[str]:
    """The names of the header fields in ``raw``, each unfolded line checked on the way."""
    block = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    names = []
    for line in block.split("\r\n"):
        assert "\r" not in line and "\n" not in line
        if line[:1] in (" ", "\t"):
            continue  # a folded continuation
        names.append(line.split(":", 1)[0].lower())
    return names


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    subject=st.sampled_from(BREAKS).flatmap(
        lambda brk: st.builds(lambda a, b: a + brk + b, st.text(max_size=40), st.text(max_size=40))
    ),
    name=st.one_of(st.text(max_size=60), st.sampled_from(BREAKS).map(lambda b: f"Jan{b}")),
)
def test_a_mail_has_only_its_own_headers_whatever_reached_them(
    subject: str, name: str, tmp_path: Path
) -> None:
    # What the hub never took as input can still reach a header (a name from the identity
    # provider): the mail written from it keeps exactly its own header fields.
    settings = Settings(
        environment="test",
        data_dir=tmp_path,
        mail_from="Gemeente =?utf-8?q?x=0D=0ABcc:_all@example.com?= <noreply@hub.example.nl>",
    )
    message = Outbound(
        id=uuid.uuid4(),
        channel="email",
        recipient="jan@example.nl",
        subject=subject,
        body="Beste Jan",
        language="nl",
        template="reply",
        case_id=uuid.uuid4(),
        party_id=uuid.uuid4(),
        context={"party_name": name, "in_reply_to": f"<a@b>{subject}"},
    )
    raw = MailComposer(settings).compose(message).data

    names = composed_headers(raw)
    assert sorted(names) == sorted(EXPECTED_HEADERS)
    mail = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert mail["Bcc"] is None
    for field in ("Subject", "To", "From"):
        decoded = str(mail[field])
        assert "\r" not in decoded and "\n" not in decoded, (field, decoded)
    assert mail["To"].addresses[0].addr_spec == "jan@example.nl"


async def test_the_citizen_token_route_refuses_nothing_it_should_not(
    client: httpx.AsyncClient, database: Database
) -> None:
    # A subject with ordinary punctuation, a percent sign and an equals sign is fine.
    async with database.session() as session:
        await make_agency(session)
        party = await make_party(session, email="jan@example.nl")
        case = await make_case(session, party)
    token = await token_for(database, "citizen", party.id)
    response = await client.post(
        f"/api/cases/{case.id}/messages",
        json={"body": "Regel een\nRegel twee", "subject": "50% = de helft? Ja: 'zeker' <ok>"},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
