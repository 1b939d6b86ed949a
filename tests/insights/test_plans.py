"""On PostgreSQL the insights queries find their rows through indexes, never by reading a
whole table: beside the hand-built data set lie two years of history (30,000 cases, 60,000
messages, 30,000 notices), and every plan of the report for one month reads the cases,
messages and notices through the indexes made for it — counting the month from its rows,
and again once its days are kept, when it reads only their fingerprints and the open cases
and notices."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.insights.rollup import roll_up_days
from hub.insights.service import agency_insights
from journeys.catalog import load_catalog
from tests.insights.test_figures import PERIOD, TODAY, build

INDEXES = (
    "ix_case_agency_created",
    "ix_case_open_stage",
    "ix_message_inbound_created",
    "ix_message_case_id",
    "ix_notice_created_brin",
)
# With the month's days kept: their fingerprints, the open cases and the notices.
KEPT_INDEXES = (
    "ix_case_agency_created",
    "ix_message_inbound_created",
    "ix_case_open_stage",
    "ix_notice_created_brin",
)


HISTORY = (
    """INSERT INTO "case" (id, reference, journey_id, journey_version, agency_id, party_id,
        title, stage, status, state, opened_channel, last_seq, created_at, updated_at, closed_at,
        stage_entered_on)
    SELECT gen_random_uuid(), 'X-' || g, 'huurtoeslag', 1,
        CASE WHEN g % 2 = 0 THEN 'toeslagen' ELSE 'uwv' END,
        (SELECT min(id::text) FROM party)::uuid,
        'history', 'assessment', CASE WHEN g % 20 = 0 THEN 'open' ELSE 'closed' END,
        json_build_object('started_on', '2024-01-01', 'decided_on', '2024-02-01',
                          'stage_entered_on', '2024-01-10'),
        'api', 0, t, t, t + interval '20 days', date '2024-01-10'
    FROM generate_series(1, 30000) AS g,
        LATERAL (SELECT timestamptz '2024-01-01' + g * interval '30 minutes' AS t) AS moment""",
    """INSERT INTO message (id, case_id, channel, direction, author_kind, body, meta, created_at)
    SELECT gen_random_uuid(), c.id, CASE WHEN k = 1 THEN 'email' ELSE 'sms' END,
        CASE WHEN k = 1 THEN 'inbound' ELSE 'outbound' END, 'citizen', '…', '{}',
        c.created_at + k * interval '1 hour'
    FROM "case" AS c, generate_series(1, 2) AS k WHERE c.reference LIKE 'X-%'""",
    """INSERT INTO notice (id, agency_id, topic_id, template_code, personalisation, important,
        dedupe_key, status, subject, body, created_at, updated_at)
    SELECT gen_random_uuid(), CASE WHEN g % 2 = 0 THEN 'toeslagen' ELSE 'uwv' END, 1, 'kans',
        '{}', false, 'history-' || g, 'delivered', '', '', t, t
    FROM generate_series(1, 30000) AS g,
        LATERAL (SELECT timestamptz '2024-01-01' + g * interval '30 minutes' AS t) AS moment""",
)


async def test_the_report_reads_through_indexes(session: AsyncSession) -> None:
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("the plans are PostgreSQL's")
    await build(session)
    connection = await session.connection()
    for statement in HISTORY:
        await connection.execute(text(statement))
    await connection.exec_driver_sql("ANALYZE")
    counted = await plans_of_the_report(session)
    assert len(counted) >= 6
    everything = "\n\n".join(counted)
    no_whole_tables(everything)
    for index in INDEXES:
        assert index in everything, f"{index} unused:\n{everything}"

    await roll_up_days(
        session,
        catalog=load_catalog(),
        agency_id="toeslagen",
        days=PERIOD.days(),
        timezone="Europe/Amsterdam",
    )
    await connection.exec_driver_sql("ANALYZE")
    everything = "\n\n".join(await plans_of_the_report(session))
    no_whole_tables(everything)
    assert "on insight_day" in everything  # a table of a month's rows: read as it suits
    for index in KEPT_INDEXES:
        assert index in everything, f"{index} unused:\n{everything}"
    assert "ix_message_case_id" not in everything  # no contacts counted
    # Open cases by journey, stage and the day they entered it: from the index alone.
    assert "Index Only Scan using ix_case_open_stage" in everything, everything


def no_whole_tables(plans: str) -> None:
    for table in ("case", "message", "notice"):
        assert f"Seq Scan on {table} " not in plans, plans
        assert f'Seq Scan on "{table}"' not in plans, plans


async def plans_of_the_report(session: AsyncSession) -> list[str]:
    """The plans of the report's queries, as PostgreSQL makes them for the report."""
    connection = await session.connection()
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    engine = connection.sync_connection.engine if connection.sync_connection else None
    assert engine is not None
    event.listen(engine, "before_cursor_execute", seen)
    try:
        await agency_insights(
            session, catalog=load_catalog(), agency_id="toeslagen", period=PERIOD, today=TODAY
        )
    finally:
        event.remove(engine, "before_cursor_execute", seen)

    plans = []
    for statement, parameters in statements:
        rows = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        plans.append("\n".join(row[0] for row in rows))
    return plans
