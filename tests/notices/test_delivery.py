"""A notice through the real delivery path: the worker sends the outbox row to a real SMTP
server, and the notice's status follows the row (as the worker will call it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from channels.email.adapter import SmtpAdapter
from hub.config import Settings
from hub.db import Database
from hub.delivery.worker import deliver_once
from hub.models import Notice, OutboxItem
from hub.notices.service import notice_status_from_outbox
from hub.ports import AdapterRegistry
from tests.builders import make_party
from tests.email.sink import SmtpSink, smtp_settings
from tests.notices.conftest import World, consent, notify


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    server = SmtpSink()
    await server.start()
    yield server
    await server.stop()


async def follow_outbox(database: Database) -> None:
    """What the worker does after ``record()``: the notices follow their outbox rows."""
    async with database.session() as session:
        for item in (await session.exec(select(OutboxItem))).all():
            await notice_status_from_outbox(session, item)


@pytest.mark.parametrize("reply", ["250 OK", "550 No such user"])
async def test_notice_mail_is_sent_and_its_status_follows(
    database: Database, world: World, sink: SmtpSink, tmp_path: Path, reply: str
) -> None:
    sink.rcpt_reply = reply
    settings = smtp_settings(
        Settings(
            environment="test",
            data_dir=tmp_path,
            run_worker=False,
            mail_from="Toeslagen <noreply@hub.test>",
        ),
        sink.port,
    )
    adapters = AdapterRegistry()
    adapters.register(SmtpAdapter(settings))
    async with database.session() as session:
        party = await make_party(session, email="anna@example.nl", preferred_channel="email")
        await consent(session, party, world.topic, True)
        routed = await notify(session, world, party)

    assert await deliver_once(database, adapters) == 1
    await follow_outbox(database)

    async with database.session() as session:
        notice = await session.get(Notice, routed.notice.id)
    assert notice is not None
    if reply.startswith("250"):
        assert notice.status == "delivered"
        [mail] = sink.received
        message = mail.message
        assert mail.recipients == ["anna@example.nl"]
        assert message["Subject"] == "Mogelijk recht op huurtoeslag"
        assert message["Auto-Submitted"] == "auto-generated"
        text = message.get_body(("plain",))
        assert text is not None
        assert "U heeft mogelijk recht op huurtoeslag vanaf 1 april." in text.get_content()
    else:
        assert notice.status == "permanent-failure"
        assert sink.received == []
