"""The insights report: an agency's figures per journey over a period, counted by the database.

The period's case and channel figures add up over its days: a completed day's come from the
figures kept for it (hub/insights/rollup.py) while they still match the day's rows, every
other day's are counted from the rows (hub/insights/days.py) — the same numbers either way.
The stages of the open cases and the notices are counted from the rows on every request,
through indexes: open cases by agency, notices by agency and time.

The period is a range of local days (the hub's time zone), both ends included. Case figures
count the cases *opened* in the period, a cohort: its lead times, contacts and switches.
The stage figures count every case that is open now.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.clock import start_of_local_day
from hub.insights.days import (
    CLOSED,
    Cohort,
    DayFigures,
    Waits,
    figures_from_rows,
    plan_for_the_values_at_hand,
)
from hub.insights.rollup import fresh_days, kept_figures
from hub.insights.schemas import (
    ChannelWeek,
    FirstResponse,
    Insights,
    JourneyFigures,
    NoticeFigures,
    StageNow,
)
from hub.models import Case, Notice
from journeys.catalog import Catalog, UnknownJourney
from journeys.model import ANY_AGENCY, JourneyDefinition

CASES = Case.metadata.tables["case"]
NOTICES = Notice.metadata.tables["notice"]

MAX_PERIOD_DAYS = 366
DEFAULT_PERIOD_DAYS = 28
SENT = ("sending", "delivered", "permanent-failure", "temporary-failure", "technical-failure")


@dataclass(frozen=True)
class Period:
    """Local days ``first`` to ``last``, both included."""

    first: dt.date
    last: dt.date

    @classmethod
    def ending(cls, last: dt.date, days: int = DEFAULT_PERIOD_DAYS) -> Period:
        return cls(last - dt.timedelta(days=days - 1), last)

    def bounds(self, timezone: str) -> tuple[dt.datetime, dt.datetime]:
        """The UTC moments the period starts and ends (the day after ``last`` begins)."""
        return (
            start_of_local_day(self.first, timezone),
            start_of_local_day(self.last + dt.timedelta(days=1), timezone),
        )

    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def weeks(self) -> list[dt.date]:
        """The Mondays of the weeks the period touches."""
        monday = self.first - dt.timedelta(days=self.first.weekday())
        weeks = []
        while monday <= self.last:
            weeks.append(monday)
            monday += dt.timedelta(days=7)
        return weeks


def journeys_of_agency(catalog: Catalog, agency_id: str) -> list[JourneyDefinition]:
    """The journeys whose cases the agency owns: its own, and general questions."""
    return [d for d in catalog.all() if d.agency in (agency_id, ANY_AGENCY)]


async def _rows(session: AsyncSession, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
    connection = await session.connection()
    return [tuple(row) for row in await connection.execute(query)]


def _ratio(part: float, whole: int) -> float | None:
    return round(part / whole, 2) if whole else None


async def agency_insights(
    session: AsyncSession,
    *,
    catalog: Catalog,
    agency_id: str,
    period: Period,
    today: dt.date,
    journey_id: str | None = None,
    timezone: str = "Europe/Amsterdam",
) -> Insights:
    """The agency's figures over ``period``, per journey (only ``journey_id`` when given).

    What each case figure means: :func:`hub.insights.days.figures_from_rows`. Stages now
    count every open case; a case's days in its stage run to ``today``.
    """
    start, end = period.bounds(timezone)
    await plan_for_the_values_at_hand(session)
    days = period.days()
    # Today's figures are still changing: always counted from the rows.
    fresh = await fresh_days(
        session, agency_id=agency_id, days=[d for d in days if d < today], timezone=timezone
    )
    figures = await kept_figures(session, agency_id=agency_id, fresh=fresh, journey_id=journey_id)
    figures.add(
        await figures_from_rows(
            session,
            catalog=catalog,
            agency_id=agency_id,
            cohort_days=[d for d in days if d not in fresh.cohort],
            mix_days=[d for d in days if d not in fresh.mix],
            timezone=timezone,
            journey_id=journey_id,
        )
    )
    cohorts: dict[str, Cohort] = defaultdict(Cohort)
    for (_, journey), cohort in figures.cohort.items():
        cohorts[journey].add(cohort)

    c = CASES.c
    entered = c.stage_entered_on
    open_filter = [c.agency_id == agency_id, c.status != CLOSED]
    if journey_id is not None:
        open_filter.append(c.journey_id == journey_id)
    stages_now = await _rows(
        session,
        sa.select(c.journey_id, c.stage, entered, sa.func.count())
        .where(*open_filter)
        .group_by(c.journey_id, c.stage, entered),
    )
    in_stage: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for journey, stage, entered_on, count in stages_now:
        waited = (today - entered_on).days if entered_on else 0
        counted = in_stage[journey][stage]
        counted[0] += count
        counted[1] += waited * count

    notices = await _notices(session, agency_id, journey_id, start, end)

    definitions = {d.id: d for d in journeys_of_agency(catalog, agency_id)}
    for journey in {*cohorts, *in_stage}:
        if journey not in definitions:
            try:
                definitions[journey] = catalog.get(journey)
            except UnknownJourney:
                continue
    if journey_id is not None:
        definitions = {k: v for k, v in definitions.items() if k == journey_id}
    figures_of_journeys = []
    for journey, definition in sorted(definitions.items()):
        stage_order = [s.id for s in definition.stages]
        tallies = in_stage.get(journey, {})
        stage_list = [
            StageNow(
                stage=stage,
                cases=tallies[stage][0] if stage in tallies else 0,
                mean_days_in_stage=round(tallies[stage][1] / tallies[stage][0], 1)
                if stage in tallies
                else 0.0,
            )
            for stage in stage_order + sorted(set(tallies) - set(stage_order))
        ]
        occupied = [s for s in stage_list if s.cases]
        slowest = max(occupied, key=lambda s: s.mean_days_in_stage) if occupied else None
        cohort = cohorts.get(journey, Cohort())
        figures_of_journeys.append(
            JourneyFigures(
                journey=journey,
                title=definition.title.en,
                context=definition.context,
                citizen_context=definition.citizen_context,
                done_by=definition.done_by,
                service_norm_days=definition.service_norm.days,
                service_norm_unit=definition.service_norm.unit,
                cases_opened=cohort.opened,
                open_now=sum(s.cases for s in stage_list),
                stages_now=stage_list,
                slowest_stage=slowest.stage if slowest else None,
                closed=cohort.closed,
                closed_within_norm=cohort.within_norm,
                mean_lead_days=_ratio(cohort.lead_days, cohort.closed),
                contacts=cohort.contacts,
                contacts_per_case=_ratio(cohort.contacts, cohort.opened),
                channel_switches=cohort.switches,
                switches_per_case=_ratio(cohort.switches, cohort.opened),
                first_contact_resolved=cohort.first_contact_resolved,
                first_contact_resolution=_ratio(cohort.first_contact_resolved, cohort.closed),
            )
        )
    return Insights(
        agency=agency_id,
        journey=journey_id,
        period_from=period.first,
        period_to=period.last,
        journeys=figures_of_journeys,
        first_response=_first_response(figures),
        channel_mix=_channel_mix(figures, period),
        notices=notices,
    )


def _first_response(figures: DayFigures) -> list[FirstResponse]:
    """Per channel of the citizen's first message on a case: how many were answered by
    staff (on any channel) and the mean time until the first answer."""
    per_channel: dict[str, Waits] = defaultdict(Waits)
    for (_, _, channel), waits in figures.first_response.items():
        per_channel[channel].add(waits)
    return [
        FirstResponse(
            channel=channel,
            cases=waits.cases,
            answered=waits.answered,
            mean_minutes=round(waits.waited_ms / waits.answered / 60_000, 1)
            if waits.answered
            else None,
        )
        for channel, waits in sorted(per_channel.items())
    ]


def _channel_mix(figures: DayFigures, period: Period) -> list[ChannelWeek]:
    """The citizens' messages in the period on the agency's cases, per local week and
    channel."""
    per_week: dict[tuple[dt.date, str], int] = defaultdict(int)
    for (day, _, channel), messages in figures.channel_mix.items():
        per_week[(day - dt.timedelta(days=day.weekday()), channel)] += messages
    return [
        ChannelWeek(week=week, channel=channel, messages=messages)
        for (week, channel), messages in sorted(per_week.items())
        if messages
    ]


async def _notices(
    session: AsyncSession,
    agency_id: str,
    journey_id: str | None,
    start: dt.datetime,
    end: dt.datetime,
) -> NoticeFigures:
    n = NOTICES.c
    where = [n.agency_id == agency_id, n.created_at >= start, n.created_at < end]
    if journey_id is not None:
        where.append(n.journey_id == journey_id)

    def tally(condition: ColumnElement[bool]) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    (row,) = await _rows(
        session,
        sa.select(
            sa.func.count(),
            tally(n.status.in_(SENT)),
            tally(n.status == "delivered"),
            tally(n.read_at.is_not(None)),
            tally(sa.and_(n.status == "not-sent", n.reason == "no_consent")),
            tally(n.escalated_at.is_not(None)),
        ).where(*where),
    )
    created, sent, delivered, read, no_consent, escalated = (int(v) for v in row)
    return NoticeFigures(
        created=created,
        sent=sent,
        delivered=delivered,
        read=read,
        not_sent_no_consent=no_consent,
        escalated=escalated,
    )
