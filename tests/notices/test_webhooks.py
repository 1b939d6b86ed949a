"""A subscribed agency is told by webhook when a citizen writes on a case and when a
notice's delivery reaches its final status."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.delivery.worker import show_on_message
from hub.events.service import Actor
from hub.messages.service import post_message
from hub.models import OutboxItem, WebhookDelivery
from hub.webhooks.service import CASE_MESSAGE_RECEIVED, NOTICE_STATUS_CHANGED, subscribe
from tests.builders import make_case, make_party
from tests.notices.conftest import build_world, consent, notify


async def queued(session: AsyncSession) -> list[str]:
    rows = (await session.exec(select(WebhookDelivery))).all()
    return [row.event["type"] for row in rows]


async def test_a_citizen_message_and_a_delivered_notice_each_queue_one_event(
    session: AsyncSession,
) -> None:
    world = await build_world(session)
    await subscribe(
        session,
        agency_id="toeslagen",
        url="https://backoffice.toeslagen.example/hooks",
        event_types=[CASE_MESSAGE_RECEIVED, NOTICE_STATUS_CHANGED],
        allow_local_http=False,
    )
    party = await make_party(session, email="jan@example.nl", preferred_channel="email")
    case = await make_case(session, party)
    citizen = Actor(kind="citizen", id=str(party.id), name=party.name)
    staff = Actor(kind="staff", name="Sanne", agency_id="toeslagen")
    await post_message(
        session,
        case=case,
        channel="portal",
        direction="inbound",
        author=citizen,
        body="Hallo",
        identified_by="session",
    )
    await post_message(
        session, case=case, channel="portal", direction="outbound", author=staff, body="Dag"
    )
    assert await queued(session) == [CASE_MESSAGE_RECEIVED]

    await consent(session, party, world.topic, True)
    await notify(session, world, party)
    sent = select(OutboxItem).where(col(OutboxItem.notice_id).is_not(None))
    item = (await session.exec(sent)).one()
    item.status = "delivered"
    await show_on_message(session, item)
    await show_on_message(session, item)  # a repeated report tells the agency nothing new
    assert await queued(session) == [CASE_MESSAGE_RECEIVED, NOTICE_STATUS_CHANGED]
