"""`hub mail-receiver`: the aiosmtpd receiver on a free port, fed by aiosmtplib."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiosmtplib
import pytest
from sqlmodel import select

from channels.email.receiver import start_receiver
from hub.config import Settings
from hub.db import Database
from hub.models import Case, Message, ReviewItem
from tests.builders import make_agency, make_case, make_party
from tests.email.mails import citizen_mail, reply_to

MAX_MAIL_BYTES = 20_000
REPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "mail" / "reports"


@pytest.fixture
async def receiver(settings: Settings, database: Database) -> AsyncIterator[int]:
    limited = settings.model_copy(update={"max_mail_bytes": MAX_MAIL_BYTES})
    server = await start_receiver(limited, database, host="127.0.0.1", port=0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()


async def a_case(database: Database) -> Case:
    async with database.session() as session:
        await make_agency(session)
        party = await make_party(session, "Jan Jansen", email="jan@example.nl")
        return await make_case(session, party)


async def send(port: int, raw: bytes, recipients: list[str]) -> None:
    await aiosmtplib.send(
        raw,
        sender="jan@example.nl",
        recipients=recipients,
        hostname="127.0.0.1",
        port=port,
        timeout=10,
    )


async def test_a_reply_is_stored_on_its_case_before_250(receiver: int, database: Database) -> None:
    case = await a_case(database)
    address = reply_to(case)
    # The envelope recipient carries the token even when the To header does not.
    await send(receiver, citizen_mail(to="Gemeente <info@reply.hub.test>"), [address.upper()])
    async with database.session() as session:
        [message] = (await session.exec(select(Message).where(Message.case_id == case.id))).all()
    assert message.channel == "email" and message.identified_by == "reply_token"
    assert message.body == "Ik heb de stukken gestuurd."
    assert message.meta["received_via"] == "smtp"


async def test_mail_for_another_domain_is_refused_at_rcpt(
    receiver: int, database: Database
) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await send(receiver, citizen_mail(to="someone@example.org"), ["someone@example.org"])
    assert [r.code for r in refused.value.recipients] == [550]


async def test_mail_over_the_size_limit_is_refused(receiver: int, database: Database) -> None:
    case = await a_case(database)
    raw = citizen_mail(to=reply_to(case), text="x " * MAX_MAIL_BYTES)
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
        await send(receiver, raw, [reply_to(case)])
    assert refused.value.code == 552
    async with database.session() as session:
        assert (await session.exec(select(Message).where(Message.case_id == case.id))).all() == []


async def test_unmatched_mail_is_accepted_into_review(receiver: int, database: Database) -> None:
    await send(receiver, citizen_mail(to="info@reply.hub.test"), ["info@reply.hub.test"])
    async with database.session() as session:
        [item] = (await session.exec(select(ReviewItem))).all()
    assert item.reason == "no_token" and item.meta["received_via"] == "smtp"


async def test_a_mail_that_cannot_be_stored_is_deferred_not_lost(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = Database(f"sqlite+aiosqlite:///{tmp_path}/without-tables.db")
    server = await start_receiver(settings, broken, host="127.0.0.1", port=0)
    port = int(server.sockets[0].getsockname()[1])
    try:
        with pytest.raises(aiosmtplib.SMTPResponseException) as deferred:
            await send(port, citizen_mail(to="info@reply.hub.test"), ["info@reply.hub.test"])
        assert deferred.value.code == 451
        assert "could not be stored" in caplog.text
        assert "Ik heb de stukken" not in caplog.text  # no mail text in the log
    finally:
        server.close()
        await server.wait_closed()
        await broken.dispose()


async def test_a_bounce_with_the_null_sender_is_taken(receiver: int, database: Database) -> None:
    raw = (REPORTS / "postfix_failed.eml").read_bytes().replace(b"{MESSAGE_ID}", b"x@hub.test")
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=receiver, timeout=10) as smtp:
        await smtp.sendmail("", ["noreply@reply.hub.test"], raw)  # MAIL FROM:<>
    async with database.session() as session:
        [item] = (await session.exec(select(ReviewItem))).all()
    assert item.meta["auto_submitted"] == "auto-replied"
