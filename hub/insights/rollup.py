"""The insights figures of completed days, kept per agency, day, journey and channel.

The rule that keeps them right: a day's kept figures stand beside the fingerprint of the rows
they were counted from (``insight_day``: the agency's cases opened that day with the sum of
their event counts, and every agency's messages from citizens that day). Every change to a
case — a stage, a decision, a message, however late — appends an event to it and so moves
its day's fingerprint; messages are only ever added. A report reads the fingerprints of its
period's days as they stand (through indexes, no figures computed) and uses a day's kept
figures only where they still match; every other day, today's among them, it counts from the
rows. So the figures are the same as counting everything from the rows, at any moment; the
rollup only makes them cheaper.

The delivery worker keeps the days up to date (:func:`roll_up_insights`): it rolls up the
completed days not yet kept, and rolls up again the days whose fingerprint moved, checking
the last five weeks every round and older days a block at a time, so that a case decided
months later is soon counted in its day again. Until then that day is counted from its rows.

Not covered by a fingerprint: a change of the journey catalogue's service norms or calendar
(figures within the norm of kept days stay as counted; empty ``insight_day`` to count them
again), and a change of the hub's time zone (likewise).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.clock import local_date, local_today
from hub.db import Database, utcnow
from hub.insights.days import (
    COHORT_FIELDS,
    Cohort,
    DayFigures,
    Fingerprint,
    Waits,
    figures_from_rows,
    fingerprints,
    plan_for_the_values_at_hand,
)
from hub.models import (
    Agency,
    Case,
    InsightChannelDay,
    InsightCohort,
    InsightDay,
    InsightFirstResponse,
)
from journeys.catalog import Catalog

log = logging.getLogger(__name__)

KEPT_DAYS = InsightDay.metadata.tables["insight_day"]
COHORTS = InsightCohort.metadata.tables["insight_cohort"]
WAITS = InsightFirstResponse.metadata.tables["insight_first_response"]
MIX = InsightChannelDay.metadata.tables["insight_channel_day"]
CASES = Case.metadata.tables["case"]
AGENCIES = Agency.metadata.tables["agency"]

# Days rolled up per agency in one round of the worker, so that a round stays short while a
# new hub (or a new agency) catches up with its history.
DAYS_PER_ROUND = 31
# Checked every round: the recent days, where most changes land.
RECENT_DAYS = 35
# How long the worker waits between rounds once it has caught up.
ROUND_SECONDS = 60.0
# On PostgreSQL one worker at a time rolls up (pg_try_advisory_xact_lock's key).
LOCK_KEY = 0x1A51_6475


@dataclass(frozen=True)
class Fresh:
    """The days whose kept figures still match their rows: cohort and channel mix apart."""

    cohort: frozenset[dt.date]
    mix: frozenset[dt.date]


async def fresh_days(
    session: AsyncSession, *, agency_id: str, days: Sequence[dt.date], timezone: str
) -> Fresh:
    """Which of ``days`` have kept figures that may be used as they are."""
    if not days:
        return Fresh(frozenset(), frozenset())
    k = KEPT_DAYS.c
    kept = {
        row["day"]: Fingerprint(row["cases"], row["case_events"], row["inbound"])
        for row in (
            await _execute(
                session,
                sa.select(k.day, k.cases, k.case_events, k.inbound).where(
                    k.agency_id == agency_id, k.day >= min(days), k.day <= max(days)
                ),
            )
        ).mappings()
    }
    wanted = [day for day in days if day in kept]
    now = await fingerprints(session, agency_id=agency_id, days=wanted, timezone=timezone)
    return Fresh(
        cohort=frozenset(
            day
            for day in wanted
            if (kept[day].cases, kept[day].case_events) == (now[day].cases, now[day].case_events)
        ),
        mix=frozenset(day for day in wanted if kept[day].inbound == now[day].inbound),
    )


async def kept_figures(
    session: AsyncSession,
    *,
    agency_id: str,
    fresh: Fresh,
    journey_id: str | None = None,
) -> DayFigures:
    """The kept figures of the fresh days (only ``journey_id``'s when given)."""
    figures = DayFigures()

    async def kept(days: frozenset[dt.date], *columns: sa.Column[Any]) -> list[Any]:
        if not days:
            return []
        table = columns[0].table
        where = [
            table.c.agency_id == agency_id,
            table.c.day >= min(days),
            table.c.day <= max(days),
        ]
        if journey_id is not None:
            where.append(table.c.journey_id == journey_id)
        rows = await _execute(
            session, sa.select(table.c.day, table.c.journey_id, *columns).where(*where)
        )
        return [row for row in rows.all() if row[0] in days]

    c, w, m = COHORTS.c, WAITS.c, MIX.c
    cohort_columns = [c[name] for name in COHORT_FIELDS]
    for day, journey, *values in await kept(fresh.cohort, *cohort_columns):
        figures.cohort[(day, journey)] = Cohort(*values)
    for day, journey, channel, *values in await kept(
        fresh.cohort, w.channel, w.cases, w.answered, w.waited_ms
    ):
        figures.first_response[(day, journey, channel)] = Waits(*values)
    for day, journey, channel, messages in await kept(fresh.mix, m.channel, m.messages):
        figures.channel_mix[(day, journey, channel)] = messages
    return figures


async def roll_up_days(
    session: AsyncSession,
    *,
    catalog: Catalog,
    agency_id: str,
    days: Sequence[dt.date],
    timezone: str,
) -> None:
    """Count the agency's figures of ``days`` from the rows and keep them, replacing what was
    kept. The fingerprints are read first: a change that lands while the figures are counted
    leaves a fingerprint that no longer matches, and the day is counted from its rows again."""
    if not days:
        return
    prints = await fingerprints(session, agency_id=agency_id, days=days, timezone=timezone)
    figures = await figures_from_rows(
        session,
        catalog=catalog,
        agency_id=agency_id,
        cohort_days=days,
        mix_days=days,
        timezone=timezone,
    )
    for table in (KEPT_DAYS, COHORTS, WAITS, MIX):
        await _execute(
            session, sa.delete(table).where(table.c.agency_id == agency_id, table.c.day.in_(days))
        )
    now = utcnow()
    await _insert(
        session,
        KEPT_DAYS,
        [
            {
                "agency_id": agency_id,
                "day": day,
                "cases": p.cases,
                "case_events": p.case_events,
                "inbound": p.inbound,
                "rolled_at": now,
            }
            for day, p in prints.items()
        ],
    )
    await _insert(
        session,
        COHORTS,
        [
            {"agency_id": agency_id, "day": day, "journey_id": journey, **vars(cohort)}
            for (day, journey), cohort in figures.cohort.items()
        ],
    )
    await _insert(
        session,
        WAITS,
        [
            {"agency_id": agency_id, "day": day, "journey_id": journey, "channel": channel}
            | vars(waits)
            for (day, journey, channel), waits in figures.first_response.items()
        ],
    )
    await _insert(
        session,
        MIX,
        [
            {
                "agency_id": agency_id,
                "day": day,
                "journey_id": journey,
                "channel": channel,
                "messages": messages,
            }
            for (day, journey, channel), messages in figures.channel_mix.items()
        ],
    )


async def _insert(session: AsyncSession, table: sa.Table, rows: list[dict[str, object]]) -> None:
    if rows:
        await _execute(session, sa.insert(table), rows)


async def _execute(
    session: AsyncSession, statement: sa.Executable, rows: list[dict[str, object]] | None = None
) -> sa.CursorResult[Any]:
    connection = await session.connection()
    return await connection.execute(statement, rows)


async def days_to_roll_up(
    session: AsyncSession,
    *,
    agency_id: str,
    today: dt.date,
    timezone: str,
    older_block: int = 0,
    limit: int = DAYS_PER_ROUND,
) -> list[dt.date]:
    """Completed days of the agency to roll up (at most ``limit``): kept days whose
    fingerprint moved — among the last ``RECENT_DAYS`` and the ``older_block``-th block of as
    many kept before them — then days not kept yet, from yesterday back to the agency's
    first case."""
    first_case = (
        await _execute(
            session,
            sa.select(sa.func.min(CASES.c.created_at)).where(CASES.c.agency_id == agency_id),
        )
    ).scalar_one()
    if first_case is None:
        return []
    first = local_date(first_case, timezone)
    k = KEPT_DAYS.c
    kept = set(
        (
            await _execute(
                session,
                sa.select(k.day).where(k.agency_id == agency_id, k.day >= first, k.day < today),
            )
        ).scalars()
    )
    recent_end = today - dt.timedelta(days=RECENT_DAYS)
    checked = [today - dt.timedelta(days=n) for n in range(1, RECENT_DAYS + 1)]
    kept_before = sorted((d for d in kept if d < recent_end), reverse=True)
    start = older_block % max(1, -(-len(kept_before) // RECENT_DAYS)) * RECENT_DAYS
    candidates = [d for d in checked if d in kept] + kept_before[start : start + RECENT_DAYS]
    wanted: list[dt.date] = []
    if candidates:
        fresh = await fresh_days(session, agency_id=agency_id, days=candidates, timezone=timezone)
        wanted += [d for d in candidates if d not in fresh.cohort or d not in fresh.mix]
    day = today - dt.timedelta(days=1)
    while day >= first and len(wanted) < limit:
        if day not in kept:
            wanted.append(day)
        day -= dt.timedelta(days=1)
    return wanted[:limit]


async def roll_up_agency(
    database: Database,
    *,
    catalog: Catalog,
    agency_id: str,
    timezone: str,
    older_block: int = 0,
    limit: int = DAYS_PER_ROUND,
) -> int:
    """One round for one agency: the days that needed it rolled up; how many there were."""
    async with database.session() as session:
        if session.get_bind().dialect.name == "postgresql":
            connection = await session.connection()
            locked = await connection.execute(
                sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": LOCK_KEY}
            )
            if not locked.scalar_one():
                return 0
        await plan_for_the_values_at_hand(session)
        today = local_today(timezone)
        days = await days_to_roll_up(
            session,
            agency_id=agency_id,
            today=today,
            timezone=timezone,
            older_block=older_block,
            limit=limit,
        )
        await roll_up_days(
            session, catalog=catalog, agency_id=agency_id, days=days, timezone=timezone
        )
        return len(days)


_next_round: weakref.WeakKeyDictionary[Database, tuple[float, int]] = weakref.WeakKeyDictionary()


async def roll_up_insights(database: Database, *, catalog: Catalog, timezone: str) -> int:
    """The delivery worker's step: for every agency, roll up what needs it (see the module's
    rule). Runs at most once every ``ROUND_SECONDS`` once caught up; while days are missing,
    every round. Returns 0 (the rollup never makes the worker busy)."""
    due, older_block = _next_round.get(database, (0.0, 0))
    if time.monotonic() < due:
        return 0
    # Pushed back first: a round that fails is not tried again at once.
    _next_round[database] = (time.monotonic() + ROUND_SECONDS, older_block + 1)
    try:
        async with database.session() as session:
            agencies = list((await _execute(session, sa.select(AGENCIES.c.id))).scalars())
        counts = [
            await roll_up_agency(
                database,
                catalog=catalog,
                agency_id=agency_id,
                timezone=timezone,
                older_block=older_block,
            )
            for agency_id in agencies
        ]
    except Exception:
        # Reports count what is not kept from the rows: the worker's other work goes first.
        log.exception("insights: the rollup round failed; the reports count from the rows")
        return 0
    if any(counts):
        log.info("insights: rolled up %d days", sum(counts))
    if any(count >= DAYS_PER_ROUND for count in counts):
        _next_round[database] = (time.monotonic(), older_block)
    return 0
