"""News on a case goes by the channel agreed at the desk ("we'll text you when it's
decided"), not the party's general preference."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.cases.service import act_on_case
from hub.clock import local_date
from hub.desk.service import hand_follow_up
from hub.events.service import Actor
from hub.models import OutboxItem
from journeys.catalog import load_catalog
from journeys.engine import Decide
from tests.builders import make_agency, make_case, make_party

STAFF = Actor(kind="staff", name="Sanne de Wit", agency_id="toeslagen")


async def decided_by(session: AsyncSession, *, follow_up: str | None) -> list[OutboxItem]:
    await make_agency(session, "toeslagen")
    party = await make_party(
        session, email="jan@example.nl", phone="+31612345678", preferred_channel="email"
    )
    case = await make_case(session, party)
    if follow_up:
        await hand_follow_up(session, case=case, channel=follow_up, actor=STAFF)
    await act_on_case(
        session,
        catalog=load_catalog(),
        case=case,
        # The day in the hub's time zone: between 23:00 and 24:00 UTC it is tomorrow there.
        action=Decide(on=local_date(case.created_at, "Europe/Amsterdam"), result="answered"),
        actor=STAFF,
    )
    query = select(OutboxItem).where(OutboxItem.template == "case_decided")
    return list((await session.exec(query)).all())


async def test_the_decision_is_texted_when_the_desk_said_so(session: AsyncSession) -> None:
    sent = await decided_by(session, follow_up="sms")
    assert [(item.channel, item.recipient) for item in sent] == [("sms", "+31612345678")]


async def test_without_a_follow_up_the_party_preference_holds(session: AsyncSession) -> None:
    sent = await decided_by(session, follow_up=None)
    assert [(item.channel, item.recipient) for item in sent] == [("email", "jan@example.nl")]
