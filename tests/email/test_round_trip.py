"""A staff reply goes out by mail through the outbox and the worker; the citizen's answer
to it comes back onto the same case, by its reply address or by its Message-ID alone."""

from __future__ import annotations

import httpx
from sqlmodel import col, select

from channels.email.adapter import SmtpAdapter
from hub.config import Settings
from hub.db import Database
from hub.delivery.worker import deliver_once
from hub.events.service import Actor
from hub.messages.service import reply
from hub.models import Case, Message, OutboxItem
from hub.ports import AdapterRegistry
from tests.builders import make_agency, make_case, make_party, make_staff
from tests.email.mails import MAIL_SECRET, citizen_mail
from tests.email.sink import SmtpSink, smtp_settings

AUTH = {"Authorization": f"Bearer {MAIL_SECRET}"}


def mail_to(sink: SmtpSink, settings: Settings) -> AdapterRegistry:
    """The worker's adapters: mail goes to the test's SMTP server, nothing else is sent."""
    adapters = AdapterRegistry()
    adapters.register(SmtpAdapter(smtp_settings(settings, sink.port)))
    return adapters


async def staff_replies(database: Database) -> Case:
    async with database.session() as session:
        await make_agency(session)
        staff = await make_staff(session, "toeslagen", name="Sanne de Wit")
        party = await make_party(session, "Jan Jansen", email="jan@example.nl")
        case = await make_case(session, party)
        await reply(
            session,
            case=case,
            author=Actor(kind="staff", id=str(staff.id), name=staff.display_name),
            body="Wilt u uw loonstroken sturen?",
            channel="email",
        )
    return case


async def test_the_citizen_answers_the_mail_and_it_lands_on_the_case(
    settings: Settings, database: Database, sink: SmtpSink, client: httpx.AsyncClient
) -> None:
    case = await staff_replies(database)
    await deliver_once(database, mail_to(sink, settings))
    # Opening the case sent a notice too; the reply is the mail with the staff's words.
    [sent] = [
        r.message
        for r in sink.received
        if "Wilt u uw loonstroken sturen?" in str(r.message.get_body(("plain",)))
    ]
    async with database.session() as session:
        [outbox] = (
            await session.exec(select(OutboxItem).where(OutboxItem.template == "reply"))
        ).all()
    assert outbox.status == "delivered" and outbox.provider_id == sent["Message-ID"]

    # The citizen's mail client answers to Reply-To and quotes the mail.
    answer = citizen_mail(
        to=sent["Reply-To"],
        subject=f"Re: {sent['Subject']}",
        text="Ze zitten in de bijlage.\n\nOn Mon, 3 Mar 2025 at 10:12, Gemeente wrote:\n"
        "> Wilt u uw loonstroken sturen?\n",
        in_reply_to=sent["Message-ID"],
    )
    response = await client.post("/api/inbound/email", content=answer, headers=AUTH)
    assert response.json()["outcome"] == "message"

    # Another client drops Reply-To and writes to the From address; the thread still holds.
    lost_token = citizen_mail(
        to=str(sent["From"]), text="Nog een vraag.", in_reply_to=sent["Message-ID"]
    )
    response = await client.post("/api/inbound/email", content=lost_token, headers=AUTH)
    assert response.json()["outcome"] == "message"

    async with database.session() as session:
        thread = (
            await session.exec(
                select(Message).where(Message.case_id == case.id).order_by(col(Message.created_at))
            )
        ).all()
    assert [(m.direction, m.channel, m.identified_by, m.body) for m in thread] == [
        ("outbound", "email", None, "Wilt u uw loonstroken sturen?"),
        ("inbound", "email", "reply_token", "Ze zitten in de bijlage."),
        ("inbound", "email", "thread_headers", "Nog een vraag."),
    ]
    assert thread[0].delivery_status == "delivered"


async def test_a_refused_address_falls_back_to_a_text(
    settings: Settings, database: Database, sink: SmtpSink
) -> None:
    async with database.session() as session:
        await make_agency(session)
        party = await make_party(session, email="gone@example.nl", phone="+31612345678")
        case = await make_case(session, party)
        await reply(
            session,
            case=case,
            author=Actor(kind="staff", id=None, name="Sanne de Wit"),
            body="Uw aanvraag is compleet.",
            channel="email",
        )
    sink.rcpt_reply = "550 5.1.1 <gone@example.nl>: mailbox unavailable"
    await deliver_once(database, mail_to(sink, settings))
    async with database.session() as session:
        rows = (
            await session.exec(
                select(OutboxItem).where(OutboxItem.body == "Uw aanvraag is compleet.")
            )
        ).all()
    assert sorted((r.channel, r.status) for r in rows) == [
        ("email", "permanent-failure"),
        ("sms", "pending"),
    ]
    [bounced] = [r for r in rows if r.channel == "email"]
    assert bounced.last_error is not None and "550" in bounced.last_error
