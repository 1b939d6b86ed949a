"""The insights figures against values worked out by hand on a small data set.

The period is March 2026 from Monday the 2nd to Sunday the 29th (Europe/Amsterdam), the
night the clocks go forward included; "today" is 1 June 2026.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from hub.insights.service import Period, agency_insights
from hub.models import Case, Message, Notice, Party
from journeys.catalog import load_catalog
from tests.builders import make_agency, make_party

UTC = dt.UTC
PERIOD = Period(dt.date(2026, 3, 2), dt.date(2026, 3, 29))
TODAY = dt.date(2026, 6, 1)
_numbers = itertools.count(1)


def at(text: str) -> dt.datetime:
    """A UTC moment from 'YYYY-MM-DD HH:MM'."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


async def case(
    session: AsyncSession,
    party: Party,
    journey: str,
    created: str,
    *,
    agency: str = "toeslagen",
    stage: str = "received",
    entered: str | None = None,
    decided: str | None = None,
) -> Case:
    started = at(created).astimezone(dt.timezone(dt.timedelta(hours=1))).date().isoformat()
    state: dict[str, Any] = {
        "journey_id": journey,
        "version": 1,
        "stage": stage,
        "status": "closed" if decided else "open",
        "started_on": started,
        "stage_entered_on": entered or started,
        "decided_on": decided,
    }
    row = Case(
        reference=f"T-{next(_numbers):06d}",
        journey_id=journey,
        journey_version=1,
        agency_id=agency,
        party_id=party.id,
        title=journey,
        stage=stage,
        status=state["status"],
        state=state,
        created_at=at(created),
        closed_at=at(created) if decided else None,
    )
    session.add(row)
    await session.flush()
    return row


def message(
    session: AsyncSession,
    on: Case,
    channel: str,
    when: str,
    *,
    direction: str = "inbound",
    author: str = "citizen",
) -> None:
    session.add(
        Message(
            case_id=on.id,
            channel=channel,
            direction=direction,
            author_kind=author,
            body="…",
            created_at=at(when),
        )
    )


def notice(session: AsyncSession, when: str, status: str, **fields: Any) -> None:
    session.add(
        Notice(
            agency_id=fields.pop("agency", "toeslagen"),
            topic_id=1,
            template_code="kans",
            dedupe_key=uuid.uuid4().hex,
            status=status,
            created_at=at(when),
            **fields,
        )
    )


async def build(session: AsyncSession) -> None:
    await make_agency(session, "toeslagen")
    await make_agency(session, "uwv")
    jan = await make_party(session, "Jan")
    # Rent allowance (norm: 56 calendar days). A: 49 days, within the norm.
    a = await case(session, jan, "huurtoeslag", "2026-03-02 08:00", decided="2026-04-20")
    message(session, a, "email", "2026-03-02 10:00")
    message(session, a, "email", "2026-03-02 12:00", direction="outbound", author="staff")
    message(session, a, "webchat", "2026-03-05 09:00")  # a switch
    message(session, a, "webchat", "2026-03-06 09:00")
    message(session, a, "webchat", "2026-03-06 09:05", direction="internal", author="staff")
    message(session, a, "sms", "2026-03-09 09:00")  # a switch
    # B: 66 days, past the norm (5 May); one contact from the citizen.
    b = await case(session, jan, "huurtoeslag", "2026-03-10 08:00", decided="2026-05-15")
    message(session, b, "sms", "2026-03-10 08:00")
    message(session, b, "sms", "2026-03-10 08:01", direction="outbound", author="system")
    message(session, b, "sms", "2026-03-10 08:59", direction="outbound", author="staff")
    # C: opened at 00:30 on the period's last day (still winter time), open, in its stage
    # for 10 days; a letter at 00:30 local on Monday 16 March belongs to that week.
    c = await case(
        session, jan, "huurtoeslag", "2026-03-28 23:30", stage="assessment", entered="2026-05-22"
    )
    message(session, c, "letter", "2026-03-15 23:30")
    # I: open, 20 days in its stage.
    await case(
        session, jan, "huurtoeslag", "2026-03-20 11:00", stage="assessment", entered="2026-05-12"
    )
    # D: opened at 00:30 summer time on 30 March, after the period; open 63 days.
    d = await case(session, jan, "huurtoeslag", "2026-03-29 22:30", entered="2026-03-30")
    message(session, d, "email", "2026-03-29 23:00")
    # E: opened before the period; its message in the period counts in the channel mix.
    e = await case(session, jan, "huurtoeslag", "2026-03-01 22:30", decided="2026-03-25")
    message(session, e, "counter", "2026-03-20 10:00")
    # Questions (norm: 3 working days). F: Friday → Wednesday, within.
    f = await case(session, jan, "vraag", "2026-03-06 09:00", decided="2026-03-11")
    message(session, f, "webchat", "2026-03-06 10:00")
    message(session, f, "webchat", "2026-03-06 10:30", direction="outbound", author="staff")
    # G: Thursday → the next Wednesday, one working day late.
    await case(session, jan, "vraag", "2026-03-12 09:00", decided="2026-03-18")
    # Another agency's case: never counted.
    h = await case(session, jan, "ww-uitkering", "2026-03-05 09:00", agency="uwv")
    message(session, h, "email", "2026-03-05 10:00")

    read = at("2026-03-04 08:00")
    notice(session, "2026-03-03 08:00", "delivered", read_at=read, journey_id="huurtoeslag")
    notice(session, "2026-03-03 08:00", "sending", escalated_at=read)
    notice(session, "2026-03-10 08:00", "not-sent", reason="no_consent")
    notice(session, "2026-03-10 08:00", "not-sent", reason="daily_cap")
    notice(session, "2026-03-29 22:30", "delivered")  # 30 March, local
    notice(session, "2026-03-10 08:00", "delivered", agency="uwv")
    await session.flush()


async def test_figures_per_journey(session: AsyncSession) -> None:
    await build(session)

    report = await agency_insights(
        session, catalog=load_catalog(), agency_id="toeslagen", period=PERIOD, today=TODAY
    )

    assert [j.journey for j in report.journeys] == ["huurtoeslag", "vraag"]
    rent, question = report.journeys
    assert rent.citizen_context == "standard" and rent.done_by == "citizen"
    assert rent.cases_opened == 4  # A, B, C, I
    assert rent.open_now == 3  # C, I and D
    assert {s.stage: (s.cases, s.mean_days_in_stage) for s in rent.stages_now} == {
        "received": (1, 63.0),
        "assessment": (2, 15.0),
        "decision": (0, 0.0),
    }
    assert rent.slowest_stage == "received"
    assert (rent.closed, rent.closed_within_norm, rent.mean_lead_days) == (2, 1, 57.5)
    assert (rent.contacts, rent.contacts_per_case) == (9, 2.25)
    assert (rent.channel_switches, rent.switches_per_case) == (2, 0.5)
    assert (rent.first_contact_resolved, rent.first_contact_resolution) == (1, 0.5)

    assert question.cases_opened == 2
    assert (question.closed, question.closed_within_norm, question.mean_lead_days) == (2, 1, 5.5)
    assert (question.contacts, question.contacts_per_case) == (2, 1.0)
    assert question.channel_switches == 0
    assert (question.first_contact_resolved, question.first_contact_resolution) == (2, 1.0)
    assert question.open_now == 0 and question.slowest_stage is None


async def test_first_response_channel_mix_and_notices(session: AsyncSession) -> None:
    await build(session)

    report = await agency_insights(
        session, catalog=load_catalog(), agency_id="toeslagen", period=PERIOD, today=TODAY
    )

    assert [(r.channel, r.cases, r.answered, r.mean_minutes) for r in report.first_response] == [
        ("email", 1, 1, 120.0),
        ("letter", 1, 0, None),
        ("sms", 1, 1, 59.0),
        ("webchat", 1, 1, 30.0),
    ]
    assert [(w.week.isoformat(), w.channel, w.messages) for w in report.channel_mix] == [
        ("2026-03-02", "email", 1),
        ("2026-03-02", "webchat", 3),
        ("2026-03-09", "sms", 2),
        ("2026-03-16", "counter", 1),
        ("2026-03-16", "letter", 1),
    ]
    n = report.notices
    assert (n.created, n.sent, n.delivered, n.read) == (4, 2, 1, 1)
    assert (n.not_sent_no_consent, n.escalated) == (1, 1)


async def test_one_journey_only(session: AsyncSession) -> None:
    await build(session)

    report = await agency_insights(
        session,
        catalog=load_catalog(),
        agency_id="toeslagen",
        period=PERIOD,
        today=TODAY,
        journey_id="vraag",
    )

    assert [j.journey for j in report.journeys] == ["vraag"]
    assert [(w.channel, w.messages) for w in report.channel_mix] == [("webchat", 1)]
    assert [r.channel for r in report.first_response] == ["webchat"]
    assert report.notices.created == 0
