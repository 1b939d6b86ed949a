"""The insights figures of a set of local days, counted from the cases and messages.

Every figure here adds up over days: a report over a period is the sum of its days, whether
a day was counted just now (this module) or earlier and kept (hub/insights/rollup.py). The
days are told apart in the database by the UTC moments they start and end, so the database
needs no time zone rules.

Cohort figures belong to the day a case opened and count its whole life so far: its lead
time once decided, its contacts, switches and first answer whenever they came. The channel
mix belongs to the day a citizen's message came.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.clock import start_of_local_day
from hub.models import Case, Message
from journeys.calendar import add_duration
from journeys.catalog import Catalog, UnknownJourney

CASES = Case.metadata.tables["case"]
MESSAGES = Message.metadata.tables["message"]

CONTACT_DIRECTIONS = ("inbound", "outbound")
# Written into the SQL as they are, not as parameters, so that PostgreSQL's plan for a
# prepared statement can use the partial indexes on open cases and inbound messages.
CLOSED: ColumnElement[str] = sa.literal_column("'closed'")
INBOUND: ColumnElement[str] = sa.literal_column("'inbound'")
ONE_DAY = dt.timedelta(days=1)


@dataclass
class Cohort:
    """The cases of one journey opened on one day (or over several, added up)."""

    opened: int = 0
    closed: int = 0
    within_norm: int = 0
    lead_days: int = 0
    contacts: int = 0
    switches: int = 0
    first_contact_resolved: int = 0

    def add(self, other: Cohort) -> None:
        for name in COHORT_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))


COHORT_FIELDS = tuple(f.name for f in fields(Cohort))


@dataclass
class Waits:
    """Cases whose citizen wrote first on one channel: how many, how many staff answered,
    and the waits until the first answer added up, in milliseconds."""

    cases: int = 0
    answered: int = 0
    waited_ms: int = 0

    def add(self, other: Waits) -> None:
        self.cases += other.cases
        self.answered += other.answered
        self.waited_ms += other.waited_ms


@dataclass
class DayFigures:
    """Figures keyed by day and journey (and channel); ``add`` merges another set."""

    cohort: dict[tuple[dt.date, str], Cohort] = field(default_factory=dict)
    first_response: dict[tuple[dt.date, str, str], Waits] = field(default_factory=dict)
    channel_mix: dict[tuple[dt.date, str, str], int] = field(default_factory=dict)

    def add(self, other: DayFigures) -> None:
        for key, cohort in other.cohort.items():
            self.cohort.setdefault(key, Cohort()).add(cohort)
        for wkey, waits in other.first_response.items():
            self.first_response.setdefault(wkey, Waits()).add(waits)
        for mkey, messages in other.channel_mix.items():
            self.channel_mix[mkey] = self.channel_mix.get(mkey, 0) + messages


LOCAL_DAY = "local_day"
# GROUP BY the label: PostgreSQL would not see two renderings of the expression as one.
BY_LOCAL_DAY: ColumnElement[Any] = sa.literal_column(LOCAL_DAY)


def local_day(moment: Any, days: Sequence[dt.date], timezone: str, dialect: str) -> Any:
    """The local day of ``moment`` (in ``days``' range), labelled ``local_day``: a date on
    PostgreSQL, by its own time zone rules; ISO text on SQLite, which has none, told apart
    by the UTC moments the days begin."""
    if dialect == "postgresql":
        zone: ColumnElement[str] = sa.literal_column(
            "'" + ZoneInfo(timezone).key.replace("'", "") + "'"
        )
        return sa.cast(sa.func.timezone(zone, moment), sa.Date).label(LOCAL_DAY)
    first, last = min(days), max(days)
    ends = [first + dt.timedelta(days=n) for n in range((last - first).days)]
    whens = [
        (moment < start_of_local_day(day + ONE_DAY, timezone), day.isoformat()) for day in ends
    ]
    text = sa.case(*whens, else_=last.isoformat()) if whens else sa.literal(last.isoformat())
    return text.label(LOCAL_DAY)


def on_days(
    moment: Any, days: Sequence[dt.date], timezone: str, dialect: str
) -> list[ColumnElement[bool]]:
    """``moment`` on one of ``days``: between the first's start and the last's end as
    constants, so that PostgreSQL can tell from its statistics how many rows that is; and,
    when the days have gaps, on one of them."""
    first, last = min(days), max(days)
    conditions = [
        moment >= start_of_local_day(first, timezone),
        moment < start_of_local_day(last + ONE_DAY, timezone),
    ]
    if len(set(days)) <= (last - first).days:
        day = local_day(moment, days, timezone, dialect).element
        wanted = days if dialect == "postgresql" else [d.isoformat() for d in days]
        conditions.append(day.in_(wanted))
    return conditions


def _as_date(value: dt.date | str) -> dt.date:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


async def plan_for_the_values_at_hand(session: AsyncSession) -> None:
    """On PostgreSQL, tune the planner for the insights queries, for the session's
    transaction only."""
    if session.get_bind().dialect.name != "postgresql":
        return
    connection = await session.connection()
    # A prepared statement's generic plan knows neither the agency nor the period, and reads
    # whole tables; planned for the values at hand, the queries use the indexes.
    await connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
    # An index page costs about what a table page does once both are cached (the default
    # assumes a disk seek), so a period's cases find their messages by index.
    await connection.exec_driver_sql("SET LOCAL random_page_cost = 1.1")
    # The queries read a few thousand rows through indexes: starting parallel workers costs
    # more than it saves, the more so on a busy machine.
    await connection.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")


async def _rows(session: AsyncSession, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
    connection = await session.connection()
    return [tuple(row) for row in await connection.execute(query)]


def _milliseconds_between(later: Any, earlier: Any, dialect: str) -> ColumnElement[Any]:
    # Whole milliseconds, so that waits add up the same in any order and on both databases.
    if dialect == "postgresql":
        return sa.func.round(sa.func.extract("epoch", later - earlier) * 1000)
    return sa.func.round((sa.func.julianday(later) - sa.func.julianday(earlier)) * 86_400_000.0)


async def figures_from_rows(
    session: AsyncSession,
    *,
    catalog: Catalog,
    agency_id: str,
    cohort_days: Sequence[dt.date],
    mix_days: Sequence[dt.date],
    timezone: str,
    journey_id: str | None = None,
) -> DayFigures:
    """The agency's figures of the cases opened on ``cohort_days`` and of the citizens'
    messages on ``mix_days`` (only ``journey_id``'s when given), counted from the rows.

    Lead time runs from the day a case started to the day it was decided, as the journey
    engine dated them; a case finished within the norm when it was decided on or before the
    start day plus the journey's service norm (moved to a working day), extensions and
    suspensions not counted. Contacts are messages between citizen and government (internal
    notes are not); a channel switch is a citizen's message on another channel than their
    message before on the same case; a case was resolved at first contact when it is closed
    and the citizen wrote at most once.
    """
    figures = DayFigures()
    dialect = session.get_bind().dialect.name
    if cohort_days:
        await _cohort(
            session, figures, catalog, agency_id, cohort_days, timezone, dialect, journey_id
        )
    if mix_days:
        c, m = CASES.c, MESSAGES.c
        where = [
            m.direction == INBOUND,
            *on_days(m.created_at, mix_days, timezone, dialect),
            c.agency_id == agency_id,
        ]
        if journey_id is not None:
            where.append(c.journey_id == journey_id)
        rows = await _rows(
            session,
            sa.select(
                local_day(m.created_at, mix_days, timezone, dialect),
                c.journey_id,
                m.channel,
                sa.func.count(),
            )
            .select_from(MESSAGES.join(CASES, c.id == m.case_id))
            .where(*where)
            .group_by(BY_LOCAL_DAY, c.journey_id, m.channel),
        )
        for day, journey, channel, count in rows:
            figures.channel_mix[(_as_date(day), journey, channel)] = int(count)
    return figures


async def _cohort(
    session: AsyncSession,
    figures: DayFigures,
    catalog: Catalog,
    agency_id: str,
    days: Sequence[dt.date],
    timezone: str,
    dialect: str,
    journey_id: str | None,
) -> None:
    c, m = CASES.c, MESSAGES.c
    opened_on = [c.agency_id == agency_id, *on_days(c.created_at, days, timezone, dialect)]
    if journey_id is not None:
        opened_on.append(c.journey_id == journey_id)
    day = local_day(c.created_at, days, timezone, dialect)

    def tally(on: dt.date | str, journey: str) -> Cohort:
        return figures.cohort.setdefault((_as_date(on), journey), Cohort())

    started = c.state["started_on"].as_string()
    decided = c.state["decided_on"].as_string()
    lifetimes = await _rows(
        session,
        sa.select(day, c.journey_id, c.journey_version, started, decided, sa.func.count())
        .where(*opened_on)
        .group_by(BY_LOCAL_DAY, c.journey_id, c.journey_version, started, decided),
    )
    for on, journey, version, started_on, decided_on, count in lifetimes:
        counted = tally(on, journey)
        counted.opened += count
        if decided_on is None or started_on is None:
            continue
        first, last = dt.date.fromisoformat(started_on), dt.date.fromisoformat(decided_on)
        counted.closed += count
        counted.lead_days += (last - first).days * count
        try:
            norm = catalog.get(journey, version).service_norm
        except UnknownJourney:
            continue
        if last <= add_duration(first, norm):
            counted.within_norm += count

    per_case = (
        sa.select(
            day,
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
        .where(*opened_on)
        .group_by(c.id, BY_LOCAL_DAY, c.journey_id, c.status)
        .subquery()
    )
    contact_rows = await _rows(
        session,
        sa.select(
            per_case.c.local_day,
            per_case.c.journey_id,
            sa.func.sum(per_case.c.contacts),
            sa.func.sum(
                sa.case(
                    (sa.and_(per_case.c.status == "closed", per_case.c.inbound <= 1), 1), else_=0
                )
            ),
        ).group_by(per_case.c.local_day, per_case.c.journey_id),
    )
    for on, journey, contacts, first_contact in contact_rows:
        counted = tally(on, journey)
        counted.contacts += int(contacts or 0)
        counted.first_contact_resolved += int(first_contact or 0)

    cohort_inbound = (
        sa.select(day, c.journey_id, m.case_id, m.channel, m.created_at, m.id)
        .select_from(CASES.join(MESSAGES, c.id == m.case_id))
        .where(*opened_on, m.direction == INBOUND)
        .subquery()
    )
    i = cohort_inbound.c
    inbound = sa.select(
        i.local_day,
        i.journey_id,
        i.channel,
        sa.func.lag(i.channel)
        .over(partition_by=i.case_id, order_by=(i.created_at, i.id))
        .label("before"),
    ).subquery()
    switch_rows = await _rows(
        session,
        sa.select(inbound.c.local_day, inbound.c.journey_id, sa.func.count())
        .where(inbound.c.before.is_not(None), inbound.c.before != inbound.c.channel)
        .group_by(inbound.c.local_day, inbound.c.journey_id),
    )
    for on, journey, count in switch_rows:
        tally(on, journey).switches += int(count)

    for on, journey, channel, waits in await _first_response(session, cohort_inbound, dialect):
        figures.first_response[(_as_date(on), journey, channel)] = waits


async def _first_response(
    session: AsyncSession, cohort_inbound: sa.Subquery, dialect: str
) -> Iterable[tuple[dt.date | str, str, str, Waits]]:
    """Per channel of the citizen's first message on a case: how many were answered by
    staff (on any channel) and the waits until the first answer."""
    i = cohort_inbound.c
    firsts = sa.select(
        i.local_day,
        i.journey_id,
        i.case_id,
        i.channel,
        i.created_at,
        sa.func.row_number().over(partition_by=i.case_id, order_by=(i.created_at, i.id)).label("k"),
    ).subquery()
    reply = MESSAGES.alias("reply")
    # Joined and grouped rather than a subquery per row: PostgreSQL would run that once for
    # every aggregate that reads it.
    answers = (
        sa.select(
            firsts.c.local_day,
            firsts.c.journey_id,
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
        .where(firsts.c.k == 1)
        .group_by(
            firsts.c.case_id,
            firsts.c.local_day,
            firsts.c.journey_id,
            firsts.c.channel,
            firsts.c.created_at,
        )
        .subquery()
    )
    waited = sa.select(
        answers.c.local_day,
        answers.c.journey_id,
        answers.c.channel,
        _milliseconds_between(answers.c.answered_at, answers.c.created_at, dialect).label("ms"),
    ).subquery()
    rows = await _rows(
        session,
        sa.select(
            waited.c.local_day,
            waited.c.journey_id,
            waited.c.channel,
            sa.func.count(),
            sa.func.count(waited.c.ms),
            sa.func.sum(waited.c.ms),
        ).group_by(waited.c.local_day, waited.c.journey_id, waited.c.channel),
    )
    return [
        (on, journey, channel, Waits(int(cases), int(answered), int(ms or 0)))
        for on, journey, channel, cases, answered, ms in rows
    ]


@dataclass(frozen=True)
class Fingerprint:
    """What a day's figures were counted from: the agency's cases opened that day and the sum
    of their event counts, and every agency's messages from citizens that day."""

    cases: int
    case_events: int
    inbound: int


async def fingerprints(
    session: AsyncSession, *, agency_id: str, days: Sequence[dt.date], timezone: str
) -> dict[dt.date, Fingerprint]:
    """The days' fingerprints as the rows stand now: read through the index of the agency's
    cases by opening time and that of citizens' messages by time."""
    if not days:
        return {}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        connection = await session.connection()
        bounds = {
            "los": [start_of_local_day(day, timezone) for day in days],
            "his": [start_of_local_day(day + ONE_DAY, timezone) for day in days],
            "agency": agency_id,
        }
        cases = (await connection.execute(CASES_PER_DAY, bounds)).all()
        inbound: dict[int, int] = {
            n: count for n, count in await connection.execute(INBOUND_PER_DAY, bounds)
        }
        return {
            days[n - 1]: Fingerprint(int(count), int(events), int(inbound[n]))
            for n, count, events in cases
        }
    c, m = CASES.c, MESSAGES.c
    counted = {
        _as_date(on): (int(count), int(events or 0))
        for on, count, events in await _rows(
            session,
            sa.select(
                local_day(c.created_at, days, timezone, dialect),
                sa.func.count(),
                sa.func.sum(c.last_seq),
            )
            .where(c.agency_id == agency_id, *on_days(c.created_at, days, timezone, dialect))
            .group_by(BY_LOCAL_DAY),
        )
    }
    messages = {
        _as_date(on): int(count)
        for on, count in await _rows(
            session,
            sa.select(local_day(m.created_at, days, timezone, dialect), sa.func.count())
            .where(m.direction == INBOUND, *on_days(m.created_at, days, timezone, dialect))
            .group_by(BY_LOCAL_DAY),
        )
    }
    return {
        day: Fingerprint(*counted.get(day, (0, 0)), inbound=messages.get(day, 0)) for day in days
    }


# On PostgreSQL a count per day, each through its own index range: no time zone rules per
# row, and one short statement for a year of days.
CASES_PER_DAY = sa.text(
    """SELECT d.n, f.cases, f.events
    FROM unnest(CAST(:los AS timestamptz[]), CAST(:his AS timestamptz[]))
        WITH ORDINALITY AS d(lo, hi, n)
    CROSS JOIN LATERAL (
        SELECT count(*) AS cases, coalesce(sum(c.last_seq), 0) AS events FROM "case" AS c
        WHERE c.agency_id = :agency AND c.created_at >= d.lo AND c.created_at < d.hi
    ) AS f"""
)
INBOUND_PER_DAY = sa.text(
    """SELECT d.n, (
        SELECT count(*) FROM message AS m
        WHERE m.direction = 'inbound' AND m.created_at >= d.lo AND m.created_at < d.hi
    )
    FROM unnest(CAST(:los AS timestamptz[]), CAST(:his AS timestamptz[]))
        WITH ORDINALITY AS d(lo, hi, n)"""
)
