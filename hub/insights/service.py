"""The insights report: an agency's figures per journey over a period, counted by the database.

Every figure is an aggregate query (SQLite and PostgreSQL alike) over an index: cases by
agency and opening time, open cases by agency, messages by case, notices by agency and
time. Only small groups come back to Python — a day, a stage, a channel — where the
journey's calendar (working days, public holidays) decides what the norm was.

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
from hub.insights.schemas import (
    ChannelWeek,
    FirstResponse,
    Insights,
    JourneyFigures,
    NoticeFigures,
    StageNow,
)
from hub.models import Case, Message, Notice
from journeys.calendar import add_duration
from journeys.catalog import Catalog, UnknownJourney
from journeys.model import ANY_AGENCY, JourneyDefinition

CASES = Case.metadata.tables["case"]
MESSAGES = Message.metadata.tables["message"]
NOTICES = Notice.metadata.tables["notice"]

MAX_PERIOD_DAYS = 366
DEFAULT_PERIOD_DAYS = 28
SENT = ("sending", "delivered", "permanent-failure", "temporary-failure", "technical-failure")
CONTACT_DIRECTIONS = ("inbound", "outbound")
# Written into the SQL as they are, not as parameters, so that PostgreSQL's plan for a
# prepared statement can use the partial indexes on open cases and inbound messages.
CLOSED: ColumnElement[str] = sa.literal_column("'closed'")
INBOUND: ColumnElement[str] = sa.literal_column("'inbound'")


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


def _seconds_between(later: Any, earlier: Any, dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return sa.func.extract("epoch", later - earlier)
    return (sa.func.julianday(later) - sa.func.julianday(earlier)) * 86400.0


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

    Lead time runs from the day a case started to the day it was decided, as the journey
    engine dated them; a case finished within the norm when it was decided on or before the
    start day plus the journey's service norm (moved to a working day), extensions and
    suspensions not counted. Contacts are messages between citizen and government (internal
    notes are not); a channel switch is a citizen's message on another channel than their
    message before on the same case.
    """
    start, end = period.bounds(timezone)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # A prepared statement's generic plan knows neither the agency nor the period, and
        # reads whole tables; planned for the values at hand, the queries use the indexes.
        # An index page costs about what a table page does once both are cached (the
        # default assumes a disk seek), so a period's cases find their messages by index.
        connection = await session.connection()
        await connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
        await connection.exec_driver_sql("SET LOCAL random_page_cost = 1.1")
    c, m = CASES.c, MESSAGES.c
    cohort: list[ColumnElement[bool]] = [
        c.agency_id == agency_id,
        c.created_at >= start,
        c.created_at < end,
    ]
    if journey_id is not None:
        cohort.append(c.journey_id == journey_id)

    started = c.state["started_on"].as_string()
    decided = c.state["decided_on"].as_string()
    lifetimes = await _rows(
        session,
        sa.select(c.journey_id, c.journey_version, started, decided, sa.func.count())
        .where(*cohort)
        .group_by(c.journey_id, c.journey_version, started, decided),
    )
    opened: dict[str, int] = defaultdict(int)
    closed: dict[str, int] = defaultdict(int)
    within: dict[str, int] = defaultdict(int)
    lead_days: dict[str, int] = defaultdict(int)
    for journey, version, started_on, decided_on, count in lifetimes:
        opened[journey] += count
        if decided_on is None or started_on is None:
            continue
        first, last = dt.date.fromisoformat(started_on), dt.date.fromisoformat(decided_on)
        closed[journey] += count
        lead_days[journey] += (last - first).days * count
        try:
            norm = catalog.get(journey, version).service_norm
        except UnknownJourney:
            continue
        if last <= add_duration(first, norm):
            within[journey] += count

    entered = c.state["stage_entered_on"].as_string()
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
        days = (today - dt.date.fromisoformat(entered_on)).days if entered_on else 0
        tally = in_stage[journey][stage]
        tally[0] += count
        tally[1] += days * count

    per_case = (
        sa.select(
            c.journey_id,
            c.status,
            sa.func.count(m.id).label("contacts"),
            sa.func.coalesce(sa.func.sum(sa.case((m.direction == INBOUND, 1), else_=0)), 0).label(
                "inbound"
            ),
        )
        .select_from(
            CASES.outerjoin(
                MESSAGES, sa.and_(m.case_id == c.id, m.direction.in_(CONTACT_DIRECTIONS))
            )
        )
        .where(*cohort)
        .group_by(c.id, c.journey_id, c.status)
        .subquery()
    )
    contact_rows = await _rows(
        session,
        sa.select(
            per_case.c.journey_id,
            sa.func.sum(per_case.c.contacts),
            sa.func.sum(
                sa.case(
                    (sa.and_(per_case.c.status == "closed", per_case.c.inbound <= 1), 1), else_=0
                )
            ),
        ).group_by(per_case.c.journey_id),
    )
    contacts: dict[str, int] = {}
    resolved: dict[str, int] = {}
    for journey, total, first_contact in contact_rows:
        contacts[journey], resolved[journey] = int(total or 0), int(first_contact or 0)

    inbound = (
        sa.select(
            c.journey_id,
            m.channel,
            sa.func.lag(m.channel)
            .over(partition_by=m.case_id, order_by=(m.created_at, m.id))
            .label("before"),
        )
        .select_from(MESSAGES.join(CASES, c.id == m.case_id))
        .where(*cohort, m.direction == INBOUND)
        .subquery()
    )
    switch_rows = await _rows(
        session,
        sa.select(inbound.c.journey_id, sa.func.count())
        .where(inbound.c.before.is_not(None), inbound.c.before != inbound.c.channel)
        .group_by(inbound.c.journey_id),
    )
    switches = {journey: int(count) for journey, count in switch_rows}

    first_response = await _first_response(session, cohort, dialect)
    channel_mix = await _channel_mix(session, agency_id, journey_id, period, timezone)
    notices = await _notices(session, agency_id, journey_id, start, end)

    definitions = {d.id: d for d in journeys_of_agency(catalog, agency_id)}
    for journey in {*opened, *in_stage}:
        if journey not in definitions:
            try:
                definitions[journey] = catalog.get(journey)
            except UnknownJourney:
                continue
    if journey_id is not None:
        definitions = {k: v for k, v in definitions.items() if k == journey_id}
    figures = []
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
        count_opened = opened.get(journey, 0)
        figures.append(
            JourneyFigures(
                journey=journey,
                title=definition.title.en,
                context=definition.context,
                citizen_context=definition.citizen_context,
                done_by=definition.done_by,
                service_norm_days=definition.service_norm.days,
                service_norm_unit=definition.service_norm.unit,
                cases_opened=count_opened,
                open_now=sum(s.cases for s in stage_list),
                stages_now=stage_list,
                slowest_stage=slowest.stage if slowest else None,
                closed=closed.get(journey, 0),
                closed_within_norm=within.get(journey, 0),
                mean_lead_days=_ratio(lead_days.get(journey, 0), closed.get(journey, 0)),
                contacts=contacts.get(journey, 0),
                contacts_per_case=_ratio(contacts.get(journey, 0), count_opened),
                channel_switches=switches.get(journey, 0),
                switches_per_case=_ratio(switches.get(journey, 0), count_opened),
                first_contact_resolved=resolved.get(journey, 0),
                first_contact_resolution=_ratio(resolved.get(journey, 0), closed.get(journey, 0)),
            )
        )
    return Insights(
        agency=agency_id,
        journey=journey_id,
        period_from=period.first,
        period_to=period.last,
        journeys=figures,
        first_response=first_response,
        channel_mix=channel_mix,
        notices=notices,
    )


async def _first_response(
    session: AsyncSession, cohort: list[ColumnElement[bool]], dialect: str
) -> list[FirstResponse]:
    """Per channel of the citizen's first message on a case: how many were answered by
    staff (on any channel) and the mean time until the first answer."""
    c, m = CASES.c, MESSAGES.c
    firsts = (
        sa.select(
            m.case_id,
            m.channel,
            m.created_at,
            sa.func.row_number()
            .over(partition_by=m.case_id, order_by=(m.created_at, m.id))
            .label("n"),
        )
        .select_from(MESSAGES.join(CASES, c.id == m.case_id))
        .where(*cohort, m.direction == INBOUND)
        .subquery()
    )
    reply = MESSAGES.alias("reply")
    # Joined and grouped rather than a subquery per row: PostgreSQL would run that once for
    # every aggregate that reads it.
    answers = (
        sa.select(
            firsts.c.channel,
            firsts.c.created_at,
            sa.func.min(reply.c.created_at).label("answered_at"),
        )
        .select_from(
            firsts.outerjoin(
                reply,
                sa.and_(
                    reply.c.case_id == firsts.c.case_id,
                    reply.c.direction == "outbound",
                    reply.c.author_kind == "staff",
                    reply.c.created_at >= firsts.c.created_at,
                ),
            )
        )
        .where(firsts.c.n == 1)
        .group_by(firsts.c.case_id, firsts.c.channel, firsts.c.created_at)
        .subquery()
    )
    waited = sa.select(
        answers.c.channel,
        _seconds_between(answers.c.answered_at, answers.c.created_at, dialect).label("seconds"),
    ).subquery()
    rows = await _rows(
        session,
        sa.select(
            waited.c.channel,
            sa.func.count(),
            sa.func.count(waited.c.seconds),
            sa.func.avg(waited.c.seconds),
        )
        .group_by(waited.c.channel)
        .order_by(waited.c.channel),
    )
    return [
        FirstResponse(
            channel=channel,
            cases=int(cases),
            answered=int(answered),
            mean_minutes=round(float(seconds) / 60, 1) if seconds is not None else None,
        )
        for channel, cases, answered, seconds in rows
    ]


async def _channel_mix(
    session: AsyncSession,
    agency_id: str,
    journey_id: str | None,
    period: Period,
    timezone: str,
) -> list[ChannelWeek]:
    """The citizens' messages in the period on the agency's cases, per local week and
    channel. Weeks are told apart by their UTC starting moments, so the database needs no
    time zone rules."""
    c, m = CASES.c, MESSAGES.c
    start, end = period.bounds(timezone)
    weeks = period.weeks()
    week = sa.case(
        *(
            (m.created_at < start_of_local_day(monday + dt.timedelta(days=7), timezone), index)
            for index, monday in enumerate(weeks[:-1])
        ),
        else_=len(weeks) - 1,
    )
    where = [
        m.created_at >= start,
        m.created_at < end,
        m.direction == INBOUND,
        c.agency_id == agency_id,
    ]
    if journey_id is not None:
        where.append(c.journey_id == journey_id)
    rows = await _rows(
        session,
        sa.select(week.label("week"), m.channel, sa.func.count())
        .select_from(MESSAGES.join(CASES, c.id == m.case_id))
        .where(*where)
        .group_by(week, m.channel),
    )
    return sorted(
        (
            ChannelWeek(week=weeks[int(index)], channel=channel, messages=int(count))
            for index, channel, count in rows
        ),
        key=lambda row: (row.week, row.channel),
    )


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
