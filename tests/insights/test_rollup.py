"""The figures kept per day give the report the same numbers as counting every row, also
after a late change to an old case; the worker's step keeps the days up to date.

A generated data set: two agencies, three journeys, 160 cases opened over seven weeks around
March 2026, with messages on five channels in every direction, some decided, some not.
"""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.cases.service import act_on_case
from hub.clock import local_today
from hub.db import Database
from hub.events.service import Actor
from hub.insights.rollup import (
    COHORTS,
    KEPT_DAYS,
    MIX,
    WAITS,
    days_to_roll_up,
    fresh_days,
    roll_up_days,
    roll_up_insights,
)
from hub.insights.schemas import Insights
from hub.insights.service import Period, agency_insights
from hub.messages.service import post_message
from hub.models import Case
from journeys.catalog import load_catalog
from journeys.engine import Withdraw
from tests.builders import make_agency, make_party
from tests.insights.test_figures import PERIOD, TODAY, case, message

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
CATALOG = load_catalog()
FIRST_DAY = dt.date(2026, 2, 20)
DAYS = [FIRST_DAY + dt.timedelta(days=n) for n in range(49)]
CHANNELS = ("webchat", "email", "sms", "counter", "letter")
JOURNEYS = (("toeslagen", "huurtoeslag"), ("toeslagen", "vraag"), ("uwv", "ww-uitkering"))


async def generate(session: AsyncSession) -> list[Case]:
    """The generated cases, in the order they were made."""
    draw = random.Random(7)
    await make_agency(session, "toeslagen")
    await make_agency(session, "uwv")
    party = await make_party(session, "Jan")
    cases = []
    for n in range(160):
        agency, journey = JOURNEYS[n % 3]
        opened = dt.datetime.combine(draw.choice(DAYS), dt.time(draw.randrange(24), 15))
        created = opened.strftime("%Y-%m-%d %H:%M")
        decided = None
        if draw.random() < 0.6:
            decided = (opened.date() + dt.timedelta(days=draw.randrange(1, 80))).isoformat()
        made = await case(
            session, party, journey, created, agency=agency, decided=decided, stage="received"
        )
        cases.append(made)
        moment = opened
        for _ in range(draw.randrange(7)):
            moment += dt.timedelta(hours=draw.randrange(1, 60), minutes=draw.randrange(60))
            direction = draw.choice(("inbound", "inbound", "outbound", "internal"))
            author = "citizen" if direction == "inbound" else draw.choice(("staff", "system"))
            when = moment.strftime("%Y-%m-%d %H:%M")
            message(session, made, draw.choice(CHANNELS), when, direction=direction, author=author)
    await session.flush()
    return cases


async def report(
    session: AsyncSession, period: Period = PERIOD, journey: str | None = None
) -> Insights:
    return await agency_insights(
        session,
        catalog=CATALOG,
        agency_id="toeslagen",
        period=period,
        today=TODAY,
        journey_id=journey,
    )


async def forget_kept_days(session: AsyncSession) -> None:
    connection = await session.connection()
    for table in (KEPT_DAYS, COHORTS, WAITS, MIX):
        await connection.execute(sa.delete(table))


async def test_kept_days_give_the_same_figures_as_the_rows(session: AsyncSession) -> None:
    await generate(session)
    longer = Period(dt.date(2026, 2, 1), dt.date(2026, 4, 30))
    counted = [await report(session), await report(session, longer)]
    counted.append(await report(session, journey="huurtoeslag"))
    assert counted[0].cases_opened > 40 and counted[0].channel_mix and counted[0].first_response

    # March kept: the four weeks come from kept days alone, the longer period from both.
    march = [day for day in DAYS if day.month == 3]
    await roll_up_days(
        session, catalog=CATALOG, agency_id="toeslagen", days=march, timezone="Europe/Amsterdam"
    )
    fresh = await fresh_days(
        session, agency_id="toeslagen", days=PERIOD.days(), timezone="Europe/Amsterdam"
    )
    assert fresh.cohort == fresh.mix == set(PERIOD.days())

    kept = [await report(session), await report(session, longer)]
    kept.append(await report(session, journey="huurtoeslag"))
    assert kept == counted


async def test_a_late_change_to_an_old_case_counts_at_once(session: AsyncSession) -> None:
    cases = await generate(session)
    await roll_up_days(
        session, catalog=CATALOG, agency_id="toeslagen", days=DAYS, timezone="Europe/Amsterdam"
    )
    undecided, written_on = [
        c
        for c in cases
        if c.agency_id == "toeslagen"
        and c.status == "open"
        and dt.date(2026, 3, 8) <= c.created_at.date() <= dt.date(2026, 3, 27)
    ][:2]

    # Months later: one case withdrawn, a citizen writes on another.
    await act_on_case(
        session,
        catalog=CATALOG,
        case=undecided,
        action=Withdraw(on=dt.date(2026, 5, 28), reason="moved abroad"),
        actor=Actor.system(),
    )
    await post_message(
        session,
        case=written_on,
        channel="sms",
        direction="inbound",
        author=Actor(kind="citizen"),
        body="Nog iets",
        identified_by="session",
    )
    changed = {c.created_at.astimezone(AMSTERDAM).date() for c in (undecided, written_on)}
    again = await days_to_roll_up(
        session, agency_id="toeslagen", today=TODAY, timezone="Europe/Amsterdam", limit=100
    )
    assert set(again[: len(changed)]) == changed  # before the days not kept yet
    reported = await report(session)

    await forget_kept_days(session)
    assert reported == await report(session)


async def test_the_worker_step_keeps_the_completed_days(database: Database) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    async with database.session() as session:
        await make_agency(session, "toeslagen")
        party = await make_party(session, "Jan")
        for days_ago in (0, 3, 9):
            opened = (now - dt.timedelta(days=days_ago)).strftime("%Y-%m-%d %H:%M")
            made = await case(session, party, "vraag", opened)
            message(session, made, "email", opened)

    await roll_up_insights(database, catalog=CATALOG, timezone="Europe/Amsterdam")

    async with database.session() as session:
        connection = await session.connection()
        kept = (await connection.execute(sa.select(KEPT_DAYS.c.day, KEPT_DAYS.c.cases))).all()
        assert local_today("Europe/Amsterdam") not in {day for day, _ in kept}
        assert 9 <= len(kept) <= 11  # yesterday back to the first case's day
        assert sum(cases for _, cases in kept) == 2


async def test_a_failing_round_is_logged_and_leaves_the_worker_going(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    if database.dialect != "sqlite":
        pytest.skip("the table is dropped from this test's own SQLite file")
    async with database.session() as session:
        await make_agency(session, "toeslagen")
        party = await make_party(session, "Jan")
        await case(session, party, "vraag", "2026-03-02 08:00")
        connection = await session.connection()
        await connection.execute(sa.text("DROP TABLE insight_day"))

    assert await roll_up_insights(database, catalog=CATALOG, timezone="Europe/Amsterdam") == 0
    assert "the rollup round failed" in caplog.text
