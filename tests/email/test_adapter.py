"""The SMTP adapter against a real SMTP server (aiosmtpd) in the test."""

from __future__ import annotations

import asyncio
import socket
import ssl
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from channels.email.adapter import DevMailAdapter, SmtpAdapter, render
from channels.email.tokens import read_token, token_in
from hub.config import Settings
from hub.ports import Outbound, TemporaryFailure
from tests.email.mails import DOMAIN, SECRET_KEY
from tests.email.sink import SmtpSink, smtp_settings

CASE_ID = uuid.uuid4()
PARTY_ID = uuid.uuid4()


def outbound(**changes: Any) -> Outbound:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "channel": "email",
        "recipient": "jan@example.nl",
        "subject": "Uw vraag — HT-2026-000001",
        "body": "Wij hebben <b>uw</b> stukken ontvangen.\nDank u wel.\n\nTot ziens.",
        "language": "nl",
        "template": "reply",
        "case_id": CASE_ID,
        "party_id": PARTY_ID,
        "context": {
            "case_reference": "HT-2026-000001",
            "case_title": "Vraag over toeslag",
            "agency_name": "Toeslagen",
            "party_name": "Jan Jansen",
            "author_name": "Sanne de Wit",
            "case_path": f"/cases/{CASE_ID}",
        },
    }
    values.update(changes)
    return Outbound(**values)


OPENED: list[SmtpAdapter] = []


def smtp(settings: Settings, *, tls_context: ssl.SSLContext | None = None) -> SmtpAdapter:
    """An SMTP adapter whose open connections are closed after the test."""
    adapter = SmtpAdapter(settings, tls_context=tls_context)
    OPENED.append(adapter)
    return adapter


@pytest.fixture(autouse=True)
async def close_connections() -> AsyncIterator[None]:
    yield
    while OPENED:
        await OPENED.pop().close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_reply_goes_out_with_text_and_html_and_a_reply_address(
    settings: Settings, sink: SmtpSink
) -> None:
    adapter = smtp(smtp_settings(settings, sink.port))
    message = outbound()
    report = await adapter.send(message)

    assert report.status == "delivered"
    [received] = sink.received
    assert received.recipients == ["jan@example.nl"]
    assert received.sender == "noreply@hub.test"
    mail = received.message
    assert mail.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in mail.iter_parts()] == ["text/plain", "text/html"]
    assert mail["Message-ID"] == report.provider_id == f"<{message.id.hex}@hub.test>"
    assert mail["Subject"] == "Uw vraag — HT-2026-000001"
    assert mail["To"] == "Jan Jansen <jan@example.nl>"
    assert mail["Auto-Submitted"] is None  # a person's reply: an out-of-office may answer

    token = token_in(mail["Reply-To"], DOMAIN)
    assert token is not None and len(mail["Reply-To"].split("@")[0]) <= 64
    read = read_token(SECRET_KEY, token)
    assert read is not None and read.case_id == CASE_ID and read.binds(PARTY_ID)

    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    text_content = text.get_content().replace("\r\n", "\n")
    html_content = html.get_content().replace("\r\n", "\n")
    assert "Beste Jan Jansen," in text_content
    assert "Wij hebben <b>uw</b> stukken ontvangen.\nDank u wel." in text_content
    assert "Sanne de Wit" in text_content and "HT-2026-000001" in text_content
    assert "Wij hebben &lt;b&gt;uw&lt;/b&gt; stukken ontvangen.<br>" in html_content
    assert "<b>uw</b>" not in html_content
    assert f'href="https://hub.example.nl/cases/{CASE_ID}"' in html_content


async def test_input_never_adds_a_header(settings: Settings, sink: SmtpSink) -> None:
    adapter = smtp(smtp_settings(settings, sink.port))
    message = outbound(
        subject="Vraag\r\nBcc: everyone@example.com",
        context={"party_name": "Jan\r\nX-Injected: yes", "case_reference": "HT-1"},
    )
    await adapter.send(message)
    [received] = sink.received
    mail = received.message
    assert mail["Bcc"] is None and mail["X-Injected"] is None
    assert mail["Subject"] == "Vraag Bcc: everyone@example.com"
    assert received.recipients == ["jan@example.nl"]
    header_block = received.raw.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in header_block and b"\r\nX-Injected:" not in header_block


async def test_a_recipient_with_a_line_break_is_a_permanent_failure(
    settings: Settings, sink: SmtpSink
) -> None:
    adapter = smtp(smtp_settings(settings, sink.port))
    report = await adapter.send(outbound(recipient="jan@example.nl\r\nRCPT TO:<x@evil.test>"))
    assert report.status == "permanent-failure"
    assert sink.received == []


async def test_english_and_generic_templates(settings: Settings, sink: SmtpSink) -> None:
    adapter = smtp(smtp_settings(settings, sink.port))
    await adapter.send(outbound(language="en", template="case_decided", body="A decision."))
    await adapter.send(outbound(template="login_code", case_id=None, party_id=None, context={}))
    english, code = (r.message for r in sink.received)
    plain = english.get_body(("plain",))
    assert plain is not None and "Dear Jan Jansen" in plain.get_content()
    assert "A decision." in plain.get_content()
    assert code["Reply-To"] is None  # no case: nothing to reply onto
    assert english["Auto-Submitted"] == "auto-generated"


def test_every_journey_notice_renders_in_both_languages() -> None:
    from journeys.engine import NOTIFY_TEMPLATES

    for name in (*NOTIFY_TEMPLATES, "reply", "login_code", "address_verification"):
        for language in ("nl", "en"):
            text, html = render(name, language, {"body": "Tekst <x>", "case_reference": "R"})
            assert "Tekst <x>" in text
            assert "Tekst &lt;x&gt;" in html


async def test_a_refused_recipient_is_a_permanent_failure(
    settings: Settings, sink: SmtpSink
) -> None:
    sink.rcpt_reply = "550 5.1.1 No such user"
    report = await smtp(smtp_settings(settings, sink.port)).send(outbound())
    assert report.status == "permanent-failure"
    assert report.detail is not None and "550" in report.detail


async def test_a_refused_message_is_a_permanent_failure(settings: Settings, sink: SmtpSink) -> None:
    sink.data_reply = "554 5.7.1 Rejected as spam"
    report = await smtp(smtp_settings(settings, sink.port)).send(outbound())
    assert report.status == "permanent-failure"


async def test_a_deferral_is_a_temporary_failure(settings: Settings, sink: SmtpSink) -> None:
    sink.rcpt_reply = "451 4.7.1 Greylisted, try again later"
    with pytest.raises(TemporaryFailure):
        await smtp(smtp_settings(settings, sink.port)).send(outbound())


async def test_an_unreachable_server_is_a_temporary_failure(settings: Settings) -> None:
    with pytest.raises(TemporaryFailure):
        await smtp(smtp_settings(settings, free_port())).send(outbound())


async def test_implicit_tls(
    settings: Settings, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    sink = SmtpSink()
    await sink.start(implicit_tls=server_tls)
    try:
        adapter = smtp(smtp_settings(settings, sink.port, "tls"), tls_context=client_tls)
        report = await adapter.send(outbound())
        assert report.status == "delivered"
        assert len(sink.received) == 1
        # Without trusting the certificate the hub does not send.
        with pytest.raises(TemporaryFailure):
            await smtp(smtp_settings(settings, sink.port, "tls")).send(outbound())
        assert len(sink.received) == 1
    finally:
        await sink.stop()


async def test_starttls_with_a_login(
    settings: Settings, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    sink = SmtpSink()
    await sink.start(starttls=server_tls, credentials=("hub", "mail-password"))
    try:
        with_login = smtp_settings(settings, sink.port, "starttls").model_copy(
            update={"smtp_username": "hub", "smtp_password": SecretStr("mail-password")}
        )
        adapter = smtp(with_login, tls_context=client_tls)
        assert (await adapter.send(outbound())).status == "delivered"
        assert len(sink.received) == 1
        # A wrong password is the operator's to fix: retried, never reported as a bounce.
        wrong = with_login.model_copy(update={"smtp_password": SecretStr("guess")})
        with pytest.raises(TemporaryFailure):
            await smtp(wrong, tls_context=client_tls).send(outbound())
        assert len(sink.received) == 1
        # A server that demands STARTTLS refuses the mail in the clear.
        with pytest.raises(TemporaryFailure):
            await smtp(smtp_settings(settings, sink.port, "none")).send(outbound())
    finally:
        await sink.stop()


def test_the_app_sends_by_smtp_only_when_a_host_is_set(settings: Settings) -> None:
    from hub.app import build_adapters
    from hub.db import Database

    database = Database("sqlite+aiosqlite:///:memory:")
    without = build_adapters(settings, database).get("email")
    with_host = build_adapters(smtp_settings(settings, 2525), database).get("email")
    in_production = build_adapters(
        settings.model_copy(update={"environment": "production"}), database
    ).get("email")
    assert isinstance(without, DevMailAdapter)
    assert isinstance(with_host, SmtpAdapter)
    # Production without a mail server has no mail adapter: deliveries fail and fall back.
    assert in_production is None


async def test_mails_share_one_connection(settings: Settings, sink: SmtpSink) -> None:
    adapter = smtp(smtp_settings(settings, sink.port))
    for _ in range(3):
        assert (await adapter.send(outbound())).status == "delivered"
    assert len(sink.received) == 3
    assert sink.connections == 1


async def test_a_refused_recipient_leaves_the_connection_usable(
    settings: Settings, sink: SmtpSink
) -> None:
    adapter = smtp(smtp_settings(settings, sink.port))
    sink.rcpt_reply = "550 5.1.1 No such user"
    assert (await adapter.send(outbound())).status == "permanent-failure"
    sink.rcpt_reply = "250 OK"
    assert (await adapter.send(outbound())).status == "delivered"
    assert len(sink.received) == 1
    assert sink.connections == 1


async def test_a_connection_the_server_closed_while_idle_is_replaced(
    settings: Settings,
) -> None:
    sink = SmtpSink()
    await sink.start(idle_seconds=0.2)
    try:
        adapter = smtp(smtp_settings(settings, sink.port))
        assert (await adapter.send(outbound())).status == "delivered"
        await asyncio.sleep(0.5)  # the server says 421 and hangs up
        # The next mail goes out at once on a new connection, not after a retry's backoff.
        assert (await adapter.send(outbound())).status == "delivered"
        assert len(sink.received) == 2
        assert sink.connections == 2
    finally:
        await sink.stop()


async def test_a_server_that_stops_answering_is_a_temporary_failure(settings: Settings) -> None:
    sink = SmtpSink(gate=asyncio.Event())  # takes the mail's data, never answers it
    await sink.start()
    try:
        slow = smtp_settings(settings, sink.port).model_copy(update={"smtp_timeout_seconds": 0.3})
        adapter = smtp(slow)
        with pytest.raises(TemporaryFailure):
            await asyncio.wait_for(adapter.send(outbound()), 5)
        # The connection it gave up on is not used again.
        assert sink.gate is not None
        sink.gate.set()
        assert (await adapter.send(outbound())).status == "delivered"
        assert sink.connections == 2
    finally:
        await sink.stop()


async def test_a_mail_written_ahead_is_the_one_sent_for_its_message(
    settings: Settings, sink: SmtpSink
) -> None:
    """The worker has mails written while it waits for the server (``prepare``); each is
    sent for its own message only, once, and one that cannot be written fails as before."""
    adapter = smtp(smtp_settings(settings, sink.port))
    first, second = outbound(recipient="jan@example.nl"), outbound(recipient="piet@example.nl")
    unusable = outbound(recipient="jan@example.nl\r\nRCPT TO:<x@evil.test>")
    for message in (second, first, unusable):
        adapter.prepare(message)

    assert (await adapter.send(first)).status == "delivered"
    assert (await adapter.send(second)).status == "delivered"
    assert (await adapter.send(unusable)).status == "permanent-failure"
    # Sent again (a retry), a message is written anew rather than taken from what was kept.
    assert (await adapter.send(first)).status == "delivered"

    assert [r.recipients for r in sink.received] == [
        ["jan@example.nl"],
        ["piet@example.nl"],
        ["jan@example.nl"],
    ]
    ids = [r.message["Message-ID"] for r in sink.received]
    assert ids == [adapter.message_id(first), adapter.message_id(second), ids[0]]
