"""Important notices left unread are sent again by SMS, else by letter, once."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
from sqlmodel import col, select

from hub.db import Database
from hub.models import CaseEvent, Notice, OutboxItem
from hub.notices.escalation import DEFAULT_ESCALATE_AFTER_DAYS, escalate_unread_notices
from hub.notices.service import mark_read, notice_status_from_outbox
from tests.builders import bearer, make_case, make_party, token_for
from tests.notices.conftest import TIMEZONE, World, consent, local, notify

PHONE = "+31612345678"
ADDRESS = "Dorpsstraat 1\n1234 AB Ons Dorp"
SENT = local(12)  # noon, 2 March 2026


def days_later(days: float, hour: int = 12) -> dt.datetime:
    return local(hour) + dt.timedelta(days=days)


async def portal_notice(
    database: Database,
    world: World,
    *,
    party_kwargs: dict[str, Any] | None = None,
    granted: bool = True,
    at: dt.datetime = SENT,
    **extra: Any,
) -> uuid.UUID:
    """An important notice (unless told otherwise) stored in the party's portal at noon."""
    extra.setdefault("important", True)
    async with database.session() as session:
        kwargs = {"phone": PHONE} if party_kwargs is None else party_kwargs
        party = await make_party(session, **kwargs)
        await consent(session, party, world.topic, granted)
        routed = await notify(session, world, party, at=at, **extra)
    assert (routed.notice.status, routed.notice.channel) == ("delivered", "portal")
    return routed.notice.id


async def escalate(database: Database, at: dt.datetime) -> int:
    return await escalate_unread_notices(database, now=at, timezone=TIMEZONE)


async def rows_of(database: Database, notice_id: uuid.UUID) -> list[OutboxItem]:
    """The outbox rows that send the notice itself (not its portal alert mail)."""
    async with database.session() as session:
        rows = (
            await session.exec(
                select(OutboxItem)
                .where(OutboxItem.notice_id == notice_id)
                .order_by(col(OutboxItem.created_at))
            )
        ).all()
    return [row for row in rows if row.meta.get("notice_role") != "alert"]


async def notice_of(database: Database, notice_id: uuid.UUID) -> Notice:
    async with database.session() as session:
        notice = await session.get(Notice, notice_id)
    assert notice is not None
    return notice


async def test_unread_portal_notice_is_texted_once_after_the_delay(
    database: Database, world: World
) -> None:
    notice_id = await portal_notice(database, world)
    due = days_later(DEFAULT_ESCALATE_AFTER_DAYS, hour=13)

    assert await escalate(database, days_later(DEFAULT_ESCALATE_AFTER_DAYS - 1)) == 0
    assert await rows_of(database, notice_id) == []

    assert await escalate(database, due) == 1
    [text] = await rows_of(database, notice_id)
    assert (text.channel, text.recipient) == ("sms", PHONE)
    assert text.body == "Toeslagen: mogelijk recht op huurtoeslag vanaf 1 april."
    assert text.meta["escalated_from"] == "portal"
    notice = await notice_of(database, notice_id)
    assert notice.escalated_at == due
    assert (notice.channel, notice.status) == ("sms", "sending")
    # The portal still shows the notice as it was.
    assert notice.subject == "Recht op huurtoeslag"

    assert await escalate(database, due + dt.timedelta(days=1)) == 0
    assert len(await rows_of(database, notice_id)) == 1


async def test_no_usable_phone_means_a_letter(database: Database, world: World) -> None:
    notice_id = await portal_notice(
        database,
        world,
        party_kwargs={"phone": PHONE, "verified": False, "postal_address": ADDRESS},
    )
    assert await escalate(database, days_later(8)) == 1
    [letter] = await rows_of(database, notice_id)
    assert (letter.channel, letter.recipient) == ("letter", ADDRESS)
    # A letter carries the portal text: the agency wrote no letter template.
    assert letter.body.startswith("Beste Citizen")
    assert (await notice_of(database, notice_id)).channel == "letter"


async def test_nowhere_to_send_it_means_no_escalation_yet(database: Database, world: World) -> None:
    notice_id = await portal_notice(database, world, party_kwargs={})
    assert await escalate(database, days_later(8)) == 0
    notice = await notice_of(database, notice_id)
    assert (notice.escalated_at, notice.channel) == (None, "portal")


async def test_read_in_time_is_not_escalated(database: Database, world: World) -> None:
    notice_id = await portal_notice(database, world)
    async with database.session() as session:
        notice = await session.get(Notice, notice_id)
        assert notice is not None
        await mark_read(session, notice)
    assert await escalate(database, days_later(30)) == 0
    assert await rows_of(database, notice_id) == []


async def test_a_notice_not_marked_important_is_not_escalated(
    database: Database, world: World
) -> None:
    notice_id = await portal_notice(database, world, important=False)
    assert await escalate(database, days_later(30)) == 0
    assert await rows_of(database, notice_id) == []


async def test_consent_withdrawn_meanwhile_stops_the_escalation(
    database: Database, world: World
) -> None:
    async with database.session() as session:
        party = await make_party(session, phone=PHONE)
        await consent(session, party, world.topic, True)
        routed = await notify(session, world, party, at=SENT, important=True)
    async with database.session() as session:
        await consent(session, party, world.topic, False)
    assert await escalate(database, days_later(8)) == 0
    assert await rows_of(database, routed.notice.id) == []
    assert (await notice_of(database, routed.notice.id)).escalated_at is None


async def test_the_agency_chooses_the_delay(database: Database, world: World) -> None:
    notice_id = await portal_notice(database, world, escalate_after_days=2)
    later = await portal_notice(
        database, world, escalate_after_days=14, personalisation={"allowance": "x", "start": "y"}
    )
    assert await escalate(database, days_later(1.9)) == 0
    assert await escalate(database, days_later(2.1)) == 1
    assert [r.channel for r in await rows_of(database, notice_id)] == ["sms"]
    assert await rows_of(database, later) == []
    assert await escalate(database, days_later(14.1)) == 1
    assert [r.channel for r in await rows_of(database, later)] == ["sms"]


async def test_a_text_due_at_night_waits_for_the_morning(database: Database, world: World) -> None:
    notice_id = await portal_notice(database, world)
    assert await escalate(database, days_later(8, hour=23)) == 1
    notice = await notice_of(database, notice_id)
    assert (notice.status, notice.reason, notice.channel) == ("created", "quiet_hours", "sms")
    assert await rows_of(database, notice_id) == []
    assert await escalate(database, days_later(9, hour=9)) == 0


async def test_the_case_shows_the_escalation(database: Database, world: World) -> None:
    async with database.session() as session:
        party = await make_party(session, phone=PHONE)
        await consent(session, party, world.topic, True)
        case = await make_case(session, party)
        routed = await notify(session, world, party, at=SENT, important=True, case=case)
    assert await escalate(database, days_later(8)) == 1
    async with database.session() as session:
        events = (
            await session.exec(
                select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.kind == "escalated")
            )
        ).all()
    [event] = events
    assert event.payload == {
        "notice_id": str(routed.notice.id),
        "from": "portal",
        "channel": "sms",
    }


async def test_two_workers_at_once_escalate_each_notice_once(
    database: Database, world: World
) -> None:
    ids = [
        await portal_notice(
            database, world, personalisation={"allowance": f"a{n}", "start": "1 mei"}
        )
        for n in range(3)
    ]
    counts = await asyncio.gather(*(escalate(database, days_later(8)) for _ in range(2)))
    assert sum(counts) == 3
    for notice_id in ids:
        assert len(await rows_of(database, notice_id)) == 1


async def delivered_email_notice(database: Database, world: World) -> tuple[uuid.UUID, uuid.UUID]:
    """An important notice mailed at noon and reported delivered; (notice, party)."""
    async with database.session() as session:
        party = await make_party(
            session, email="anna@example.nl", phone=PHONE, preferred_channel="email"
        )
        await consent(session, party, world.topic, True)
        routed = await notify(session, world, party, at=SENT, important=True)
    [mail] = await rows_of(database, routed.notice.id)
    async with database.session() as session:
        item = await session.get(OutboxItem, mail.id)
        assert item is not None
        item.status = "delivered"
        session.add(item)
        await notice_status_from_outbox(session, item, now=SENT + dt.timedelta(minutes=1))
    assert (await notice_of(database, routed.notice.id)).status == "delivered"
    return routed.notice.id, party.id


async def test_unopened_email_notice_is_texted(database: Database, world: World) -> None:
    notice_id, _ = await delivered_email_notice(database, world)
    assert await escalate(database, days_later(8)) == 1
    mail, text = await rows_of(database, notice_id)
    assert (mail.channel, text.channel) == ("email", "sms")
    assert text.meta["tried"] == ["email", "sms"]


async def test_email_notice_opened_through_its_link_is_not_escalated(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    notice_id, party_id = await delivered_email_notice(database, world)
    citizen = bearer(await token_for(database, "citizen", party_id))
    opened = await client.post(f"/api/me/notices/{notice_id}/read", headers=citizen)
    assert opened.status_code == 200
    assert await escalate(database, days_later(8)) == 0
    assert [r.channel for r in await rows_of(database, notice_id)] == ["email"]


async def test_notices_that_cannot_go_do_not_hold_up_the_rest(
    database: Database, world: World
) -> None:
    stuck = await portal_notice(database, world, party_kwargs={}, at=SENT - dt.timedelta(hours=1))
    due = await portal_notice(
        database, world, personalisation={"allowance": "zorgtoeslag", "start": "1 mei"}
    )
    assert await escalate_unread_notices(database, now=days_later(8), batch=1) == 1
    assert await rows_of(database, stuck) == []
    assert [r.channel for r in await rows_of(database, due)] == ["sms"]
