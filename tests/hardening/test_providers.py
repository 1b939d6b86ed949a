"""Providers failing, against a real SMTP server (aiosmtpd) and the Twilio stand-in, on
SQLite and PostgreSQL: a 4xx is retried with backoff, a 5xx is a permanent failure, past
the retry budget (``MAX_ATTEMPTS``) the notice ends in a technical failure that its agency
is told about by webhook; and a mail server that stalls holds no database connection and
holds up no other channel.

No test waits for a backoff: the worker's ``deliver_once`` is run round by round, and a
round's retry is made due by moving its ``next_attempt_at`` to now (the clock passing)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.email.adapter import SmtpAdapter
from channels.sms.adapter import TwilioSmsAdapter
from hub import db as hub_db
from hub.app import create_app
from hub.config import Settings
from hub.db import Database, utcnow
from hub.delivery.worker import MAX_ATTEMPTS, backoff, deliver_once
from hub.events.service import Actor
from hub.messages.service import reply
from hub.models import Notice, OutboxItem, WebhookDelivery
from hub.ports import AdapterRegistry
from hub.webhooks.service import NOTICE_STATUS_CHANGED
from tests.builders import bearer, key_for, make_case, make_party
from tests.email.sink import SmtpSink, smtp_settings
from tests.fakes.twilio import TwilioStandIn
from tests.notices.conftest import World, build_world, consent, notify

PHONE = "+31612345678"
STAFF = Actor(kind="staff", id=str(uuid.uuid4()), name="Sanne de Wit", agency_id="toeslagen")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path,
        run_worker=False,
        base_url="https://hub.example.nl",
        mail_from="Toeslagen <noreply@hub.test>",
        rate_limit_per_minute=0,
    )


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    server = SmtpSink()
    await server.start()
    yield server
    server.gate = None
    await server.stop()


@pytest.fixture
async def world(client: httpx.AsyncClient, database: Database) -> World:
    """The notices world, with toeslagen subscribed to its notices' status changes."""
    async with database.session() as session:
        built = await build_world(session)
    answer = await client.post(
        "/api/webhook-subscriptions",
        json={"url": "http://127.0.0.1:9/zaken/haak", "event_types": [NOTICE_STATUS_CHANGED]},
        headers=bearer(await key_for(database, "toeslagen")),
    )
    assert answer.status_code == 201, answer.text
    return built


def mail_only(settings: Settings, sink: SmtpSink) -> AdapterRegistry:
    adapters = AdapterRegistry()
    adapters.register(SmtpAdapter(smtp_settings(settings, sink.port)))
    return adapters


async def mailed_notice(database: Database, world: World) -> uuid.UUID:
    """A notice to a citizen who can be reached by mail only: its outbox row's id."""
    async with database.session() as session:
        party = await make_party(session, email="anna@example.nl", preferred_channel="email")
        await consent(session, party, world.topic, True)
        routed = await notify(session, world, party)
        [item] = (
            await session.exec(select(OutboxItem).where(OutboxItem.notice_id == routed.notice.id))
        ).all()
    assert item.channel == "email"
    return item.id


async def row(database: Database, item_id: uuid.UUID) -> tuple[OutboxItem, Notice]:
    async with database.session() as session:
        item = await session.get(OutboxItem, item_id)
        assert item is not None and item.notice_id is not None
        notice = await session.get(Notice, item.notice_id)
    assert notice is not None
    return item, notice


async def make_due(database: Database) -> None:
    """The clock moves past every backoff."""
    async with database.session() as session:
        await session.exec(
            update(OutboxItem)
            .where(col(OutboxItem.status) == "sending")
            .values(next_attempt_at=utcnow() - dt.timedelta(seconds=1))
        )


async def told_to_agency(database: Database, notice_id: uuid.UUID) -> list[str]:
    """The notice statuses queued for the subscribed agency's webhook, in order."""
    async with database.session() as session:
        rows = (
            await session.exec(select(WebhookDelivery).order_by(col(WebhookDelivery.created_at)))
        ).all()
    events = [r.event for r in rows if r.event["type"] == NOTICE_STATUS_CHANGED]
    return [e["data"]["status"] for e in events if e["data"]["notice_id"] == str(notice_id)]


async def test_a_deferral_is_retried_with_growing_backoff_until_the_server_takes_it(
    settings: Settings, database: Database, world: World, sink: SmtpSink
) -> None:
    adapters = mail_only(settings, sink)
    item_id = await mailed_notice(database, world)
    sink.rcpt_reply = "451 4.7.1 Greylisted, try again later"
    for attempt in (1, 2, 3):
        before = utcnow()
        assert await deliver_once(database, adapters) == 1
        item, notice = await row(database, item_id)
        assert (item.status, item.attempts) == ("sending", attempt)
        assert item.last_error is not None and "451" in item.last_error
        assert item.next_attempt_at >= before + backoff(attempt)
        assert notice.status == "sending"
        # Not due before its backoff: the round sends nothing.
        assert await deliver_once(database, adapters) == 0
        await make_due(database)
    sink.rcpt_reply = "250 OK"
    assert await deliver_once(database, adapters) == 1
    item, notice = await row(database, item_id)
    assert (item.status, notice.status, item.attempts) == ("delivered", "delivered", 4)
    assert len(sink.received) == 1
    assert await told_to_agency(database, notice.id) == ["delivered"]


async def test_a_refusal_is_a_permanent_failure_at_once_and_the_agency_is_told(
    settings: Settings, database: Database, world: World, sink: SmtpSink
) -> None:
    adapters = mail_only(settings, sink)
    item_id = await mailed_notice(database, world)
    sink.rcpt_reply = "550 5.1.1 No such user"
    assert await deliver_once(database, adapters) == 1
    await make_due(database)
    assert await deliver_once(database, adapters) == 0  # never tried again
    item, notice = await row(database, item_id)
    assert (item.status, item.attempts) == ("permanent-failure", 1)
    assert item.last_error is not None and "550" in item.last_error
    # No other channel to fall back to: the notice failed, and its agency hears of it.
    assert notice.status == "permanent-failure"
    assert await told_to_agency(database, notice.id) == ["permanent-failure"]
    assert sink.received == []


async def test_past_the_retry_budget_a_technical_failure_is_reported_to_the_agency(
    settings: Settings, database: Database, world: World, sink: SmtpSink
) -> None:
    adapters = mail_only(settings, sink)
    item_id = await mailed_notice(database, world)
    sink.data_reply = "452 4.3.1 Insufficient system storage"
    for _ in range(MAX_ATTEMPTS):
        assert await deliver_once(database, adapters) == 1
        await make_due(database)
    assert await deliver_once(database, adapters) == 0  # the budget is spent
    item, notice = await row(database, item_id)
    assert (item.status, item.attempts) == ("technical-failure", MAX_ATTEMPTS)
    assert item.last_error is not None and "452" in item.last_error
    assert notice.status == "technical-failure"
    assert await told_to_agency(database, notice.id) == ["technical-failure"]
    assert sink.received == []


def one_connection(database: Database) -> Database:
    """A hub database on the same data with a pool of ONE connection (and no overflow): if
    anything held it, everything else would wait for it, and fail after two seconds."""
    small = Database(database.url)
    sqlite = database.dialect == "sqlite"
    small.engine = create_async_engine(
        database.url,
        pool_size=1,
        max_overflow=0,
        pool_timeout=2,
        connect_args={"timeout": 30} if sqlite else {},
    )
    if sqlite:
        hub_db._tune_sqlite(small.engine)
    small.sessions = async_sessionmaker(small.engine, class_=AsyncSession, expire_on_commit=False)
    small.reader = small.engine.execution_options(isolation_level="AUTOCOMMIT")
    return small


async def test_a_stalled_mail_server_holds_no_connection_and_no_other_channel(
    settings: Settings, database: Database, world: World, sink: SmtpSink
) -> None:
    item_id = await mailed_notice(database, world)
    async with database.session() as session:
        party = await make_party(session, "Fatima", phone=PHONE)
        case = await make_case(session, party)
        text = await reply(session, case=case, author=STAFF, body="Uw sms.", channel="sms")
    key = await key_for(database, "toeslagen")
    small = one_connection(database)
    sink.gate = asyncio.Event()  # the server takes the mail's DATA and then says nothing
    with TwilioStandIn() as twilio:
        adapters = mail_only(settings, sink)
        adapters.register(
            TwilioSmsAdapter(
                account_sid=twilio.account_sid,
                auth_token=twilio.auth_token,
                sender=twilio.from_number,
                base_url=settings.base_url,
                api_base=twilio.url,
                database=small,
            )
        )
        worker = asyncio.create_task(deliver_once(small, adapters, concurrency=2))
        try:
            deadline = time.monotonic() + 30
            while sink.receiving == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert sink.receiving == 1, "the mail never reached the server"
            # The text goes out, and is recorded, while the mail is stuck.
            while time.monotonic() < deadline:
                async with small.session() as session:
                    sms = (
                        await session.exec(
                            select(OutboxItem).where(OutboxItem.message_id == text.id)
                        )
                    ).one()
                if sms.provider_id is not None:
                    break
                await asyncio.sleep(0.02)
            assert [t["Body"] for t in twilio.sent] == ["Uw sms."]
            assert sms.status == "sending" and sms.provider_id is not None
            # The one connection is free: the stuck send holds none.
            assert small.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
            item, notice = await row(database, item_id)
            # A request to a hub on that pool is answered (were the connection held, it
            # would wait for it and fail after the pool's two seconds).
            hub = create_app(settings, database=small)
            async with LifespanManager(hub, startup_timeout=60):
                transport = httpx.ASGITransport(app=hub)
                async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as c:
                    read = await c.get(f"/api/notices/{notice.id}", headers=bearer(key))
            assert read.status_code == 200, read.text
            assert read.json()["status"] == "sending"
            assert not worker.done()
        finally:
            sink.gate.set()
            await asyncio.wait_for(worker, timeout=10)
            await small.dispose()
    item, notice = await row(database, item_id)
    assert (item.status, notice.status) == ("delivered", "delivered")
    assert len(sink.received) == 1
