"""The channel switch, end to end, against a hub served by uvicorn with its in-process worker,
a real SMTP server and the local Twilio stand-in.

Jan logs in with a code by mail, starts a chat and leaves; Sanne's reply reaches him by
email; he answers the email; later he texts a question; then he visits the counter, where
Ahmed helps him. All five contacts stand on one case thread, in order, each with its
channel — for Jan and for the staff member who picks the case up — and counted from the
event log, Jan identified himself once (the login the chat needs); mail, text and desk used
what each channel itself carries.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlmodel import col, select

from hub.app import create_app
from hub.config import Settings
from hub.db import Database
from hub.models import CaseEvent, LoginSession
from tests.builders import bearer, make_agency, make_party, make_staff, token_for
from tests.email.sink import SmtpSink
from tests.fakes.twilio import TwilioStandIn
from tests.live.harness import LiveServer, start_server

BASE_URL = "https://hub.example.nl"
MAIL_SECRET = "inbound-secret-for-tests"
PHONE = "+31612345678"
ALWAYS_OPEN = {
    day: [["00:00", "23:59"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}

T = TypeVar("T")


async def eventually(check: Callable[[], T | None], within: float = 15.0) -> T:
    """The first truthy answer of ``check``, polled until ``within`` seconds have passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        found = check()
        if found:
            return found
        if loop.time() > deadline:
            raise AssertionError("waited in vain")
        await asyncio.sleep(0.05)


@pytest.fixture
def twilio() -> Iterator[TwilioStandIn]:
    with TwilioStandIn() as stand_in:
        yield stand_in


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    server = SmtpSink()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def settings(tmp_path: Path, twilio: TwilioStandIn, sink: SmtpSink) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path,
        base_url=BASE_URL,
        run_worker=True,
        worker_interval_seconds=0.05,
        smtp_host="127.0.0.1",
        smtp_port=sink.port,
        smtp_security="none",
        mail_from="Dienst Toeslagen <noreply@hub.example.nl>",
        inbound_mail_domain="reply.hub.example.nl",
        inbound_mail_secret=MAIL_SECRET,
        **twilio.settings(),
    )


@pytest.fixture
async def hub(settings: Settings, database: Database) -> AsyncIterator[LiveServer]:
    app = create_app(settings, database=database)
    server, task, port = await start_server(app)
    yield LiveServer(app, "127.0.0.1", port, server)
    server.should_exit = True
    await asyncio.wait_for(task, 10)


def mails_to(sink: SmtpSink, address: str) -> list[EmailMessage]:
    return [received.message for received in sink.received if address in received.recipients]


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def answer_to(mail: EmailMessage, text: str) -> bytes:
    """Jan's mail client answering ``mail``: to its Reply-To, threaded, quoting it below."""
    answer = EmailMessage(policy=email.policy.SMTP)
    answer["From"] = "Jan Jansen <jan@example.nl>"
    answer["To"] = str(mail["Reply-To"])
    answer["Subject"] = "Re: " + str(mail["Subject"])
    answer["Message-ID"] = "<answer-1@mail.example.nl>"
    answer["In-Reply-To"] = str(mail["Message-ID"])
    answer["Authentication-Results"] = "mx.hub.example.nl; spf=pass; dkim=pass; dmarc=pass"
    quoted = "\n".join("> " + line for line in text_of(mail).splitlines())
    answer.set_content(f"{text}\n\nOp 28 nov. 2026 om 10:12 schreef Dienst Toeslagen:\n{quoted}\n")
    return answer.as_bytes()


async def test_one_citizen_five_contacts_four_channels_one_thread(
    hub: LiveServer, database: Database, sink: SmtpSink, twilio: TwilioStandIn
) -> None:
    async with database.session() as session:
        agency = await make_agency(
            session, "toeslagen", activities=("vragen-beantwoorden", "balie-zoeken")
        )
        agency.opening_hours = ALWAYS_OPEN
        session.add(agency)
        jan = await make_party(
            session, "Jan Jansen", email="jan@example.nl", phone=PHONE, preferred_channel="email"
        )
        sanne = await make_staff(session, "toeslagen", name="Sanne de Wit")
        ahmed = await make_staff(session, "toeslagen", name="Ahmed El Amrani")
    sanne_token = await token_for(database, "staff", sanne.id)
    ahmed_token = await token_for(database, "staff", ahmed.id)

    async with httpx.AsyncClient(base_url=hub.http_url, timeout=10) as http:
        # Jan logs in with a one-time code that reaches him by mail: the one identification.
        asked = await http.post("/api/auth/citizen/code", json={"address": "jan@example.nl"})
        assert asked.status_code == 202
        code_mail = await eventually(lambda: _first(mails_to(sink, "jan@example.nl")))
        code = re.search(r"\b(\d{6})\b", text_of(code_mail))
        assert code is not None
        login = await http.post(
            "/api/auth/citizen/session",
            json={"address": "jan@example.nl", "code": code.group(1)},
        )
        assert login.status_code == 200, login.text
        jan_token = login.json()["token"]

        # 1. A chat that becomes a case; Jan leaves before anyone answers.
        started = await http.post(
            "/api/chats",
            json={"agency_id": "toeslagen", "text": "Mijn toeslag is deze maand niet betaald."},
            headers=bearer(jan_token),
        )
        assert started.status_code == 201, started.text
        chat = started.json()["chat"]
        case_id = chat["case_id"]

        # 2. Sanne picks the chat up and answers; Jan is not in the chat, so it goes by mail.
        queue = await http.get("/api/chats/queue", headers=bearer(sanne_token))
        assert [entry["case_id"] for entry in queue.json()] == [case_id]
        picked = await http.post(f"/api/chats/{chat['id']}/pickup", headers=bearer(sanne_token))
        assert picked.status_code == 200, picked.text
        answered = await http.post(
            f"/api/chats/{chat['id']}/messages",
            json={"text": "Goedemiddag Jan, is uw rekeningnummer veranderd?"},
            headers=bearer(sanne_token),
        )
        assert answered.status_code == 201, answered.text
        reply_mail = await eventually(
            lambda: _first(
                [m for m in mails_to(sink, "jan@example.nl") if "rekeningnummer" in text_of(m)]
            )
        )
        assert str(reply_mail["Reply-To"]).startswith("reply+")

        # 3. Jan answers the mail (his provider posts it to the hub).
        posted = await http.post(
            "/api/inbound/email",
            content=answer_to(reply_mail, "Ja, sinds 1 november heb ik een nieuw nummer."),
            headers={"Authorization": f"Bearer {MAIL_SECRET}", "Content-Type": "message/rfc822"},
        )
        assert posted.status_code in (200, 201, 202), posted.text

        # 4. Later he texts a question from his verified number.
        form = twilio.inbound_form(sender=PHONE, body="Wanneer krijg ik het geld?")
        texted = await twilio.post(http, "/api/sms/inbound", form, public_url=BASE_URL)
        assert texted.status_code == 200, texted.text

        # 5. Then he comes to the counter, where Ahmed finds him and checks his passport.
        found = await http.post(
            "/api/desk/search",
            json={"bsn": jan.bsn, "purpose": "balie-zoeken"},
            headers=bearer(ahmed_token),
        )
        assert found.status_code == 200, found.text
        assert case_id in [case["id"] for case in found.json()["cases"]]
        visit = await http.post(
            f"/api/desk/cases/{case_id}/visits",
            json={"topic": "Betaling toeslag", "identity_document": "passport"},
            headers=bearer(ahmed_token),
        )
        assert visit.status_code == 201, visit.text

        expected = [
            ("webchat", "inbound", "Mijn toeslag is deze maand niet betaald."),
            ("email", "outbound", "Goedemiddag Jan, is uw rekeningnummer veranderd?"),
            ("email", "inbound", "Ja, sinds 1 november heb ik een nieuw nummer."),
            ("sms", "inbound", "Wanneer krijg ik het geld?"),
            ("counter", "inbound", None),
        ]
        for token in (jan_token, ahmed_token):
            thread = await http.get(f"/api/cases/{case_id}/messages", headers=bearer(token))
            assert thread.status_code == 200, thread.text
            contacts = _contacts(thread.json())
            assert [(c["channel"], c["direction"]) for c in contacts] == [
                (channel, direction) for channel, direction, _ in expected
            ]
            for contact, (_, _, body) in zip(contacts, expected, strict=True):
                if body is not None:
                    assert contact["body"].strip() == body  # the quoted mail is stripped
        # The mail went out by SMTP and reached the case's thread marked delivered.
        assert contacts[1]["delivery_status"] == "delivered"

    # Counted from the event log: how each contact knew it was Jan, and one login in all.
    async with database.session() as session:
        events = (
            await session.exec(
                select(CaseEvent)
                .where(CaseEvent.case_id == uuid.UUID(case_id), CaseEvent.kind == "message")
                .order_by(col(CaseEvent.seq))
            )
        ).all()
        logins = (
            await session.exec(select(LoginSession).where(LoginSession.subject_id == jan.id))
        ).all()
    identified = [
        (e.payload["channel"], e.payload.get("identified_by"))
        for e in events
        if e.payload["direction"] == "inbound"
    ]
    assert identified == [
        ("webchat", "otp"),
        ("email", "reply_token"),
        ("sms", "verified_phone"),
        ("counter", "id_document"),
    ]
    assert len(logins) == 1
    assert [e.seq for e in events] == sorted(e.seq for e in events)


def _first(items: list[T]) -> T | None:
    return items[0] if items else None


def _contacts(thread: Any) -> list[dict[str, Any]]:
    """The messages of a thread answer (a list, or an object with ``messages``)."""
    messages = thread["messages"] if isinstance(thread, dict) else thread
    return [m for m in messages if m["direction"] in ("inbound", "outbound")]
