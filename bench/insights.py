"""The insights page and API on PostgreSQL with a million cases.

Makes a fresh database with the hub's tables and indexes, and fills it inside PostgreSQL
(``INSERT … SELECT`` over ``generate_series``: nothing travels over the wire, which is
faster still than ``COPY``) with ``--cases`` cases (default 1,000,000) spread over two years
and every journey of the catalogue, their messages (one to seven a case, on five channels,
citizen and staff taking turns) and notices; then ``VACUUM ANALYZE``. It then asks the hub
(its app in this process, over ASGI: the server's work without a network) for the largest
agency's figures, as a supervisor's browser and as the agency's system do: first the page
with no day kept (every figure counted from the rows), then — after rolling up every
completed day of every agency as the delivery worker does, a month at a time, timed —

- ``GET /console/insights`` (the page: four weeks up to today, all journeys);
- ``GET /api/insights`` (the same as JSON), and for one journey;
- ``GET /api/insights.csv`` for a quarter, and ``GET /api/insights`` for a year (with
  100,000 cases, as many of the agency's cases as four weeks of a million).

It prints the data's size, how long the rollup took and, per request, the first (cold) and
the median response time of ``--repeat`` more in milliseconds. The aim is under a second
for the page. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

if TYPE_CHECKING:
    from hub.db import Database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
AGENCY = "gemeente-utrecht"
HISTORY_DAYS = 730
PARTIES = 50_000
AGENCIES = ("toeslagen", "uwv", AGENCY, "rdw", "kvk", "belastingdienst")


async def admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(statement))
    await engine.dispose()


def fill_statements(cases: int, notices: int) -> list[str]:
    """The SQL that makes the parties, cases, messages and notices (numbers and the
    catalogue's own ids are all that is written into it)."""
    from journeys.catalog import load_catalog
    from journeys.model import ANY_AGENCY

    catalog = load_catalog()
    journeys = []
    for index, definition in enumerate(catalog.all()):
        agency = AGENCY if definition.agency == ANY_AGENCY else definition.agency
        stages = ",".join(f'"{stage.id}"' for stage in definition.stages)
        journeys.append(
            f"({index}, '{definition.id}', {definition.version}, '{agency}', "
            f"'{{{stages}}}'::text[])"
        )
    kinds = ",\n".join(journeys)
    return [
        f"""INSERT INTO party (id, kind, name, preferred_channel, preferred_language, needs,
            created_at)
        SELECT gen_random_uuid(), 'person', 'Burger ' || g, 'portal', 'nl', '[]', now()
        FROM generate_series(1, {PARTIES}) AS g""",  # noqa: S608
        "CREATE TEMP TABLE bench_party AS SELECT row_number() OVER () AS n, id FROM party",
        f"""CREATE TEMP TABLE bench_journey (n int, id text, version int, agency text,
            stages text[]);
        INSERT INTO bench_journey VALUES {kinds}""",  # noqa: S608
        # A case opened at a moment of the last two years; closed when decided, which the
        # older ones mostly are. Dates in its state are local days, as the engine keeps them.
        f"""INSERT INTO "case" (id, reference, journey_id, journey_version, agency_id, party_id,
            title, stage, status, state, opened_channel, last_seq, created_at, updated_at,
            closed_at, stage_entered_on)
        SELECT gen_random_uuid(), 'B-' || u.g, j.id, j.version, j.agency, p.id, j.id, s.stage,
            CASE WHEN s.closed THEN 'closed' ELSE 'open' END,
            json_build_object(
                'journey_id', j.id, 'version', j.version, 'stage', s.stage,
                'status', CASE WHEN s.closed THEN 'closed' ELSE 'open' END,
                'started_on', s.day, 'stage_entered_on', least(s.day + s.took / 2, current_date),
                'decided_on', CASE WHEN s.closed THEN s.day + s.took END),
            'portal', 0, s.opened, s.opened,
            CASE WHEN s.closed THEN s.opened + s.took * interval '1 day' END,
            least(s.day + s.took / 2, current_date)
        FROM (
            -- Drawn per row here: in a lateral subquery PostgreSQL may draw once per journey.
            SELECT n AS g, random() AS u1, random() AS u2, random() AS u3, random() AS u4
            FROM generate_series(1, {cases}) AS n
        ) AS u
        JOIN bench_journey AS j ON j.n = u.g % (SELECT count(*) FROM bench_journey)
        JOIN bench_party AS p ON p.n = 1 + u.g % {PARTIES}
        CROSS JOIN LATERAL (
            SELECT now() - u.u1 * interval '{HISTORY_DAYS} days' AS opened,
                   1 + (u.u2 * 70)::int AS took,
                   j.stages[1 + (u.u3 * (array_length(j.stages, 1) - 1))::int] AS stage
        ) AS r
        CROSS JOIN LATERAL (
            SELECT r.opened, r.took, r.stage,
                   (r.opened AT TIME ZONE 'Europe/Amsterdam')::date AS day,
                   r.opened + r.took * interval '1 day' < now() AND u.u4 < 0.9 AS closed
        ) AS s""",  # noqa: S608
        """INSERT INTO message (id, case_id, party_id, channel, direction, author_kind, body,
            meta, created_at)
        SELECT gen_random_uuid(), c.id, c.party_id,
            (ARRAY['webchat', 'email', 'sms', 'counter', 'portal'])[1 + (random() * 4)::int],
            CASE WHEN k % 2 = 1 THEN 'inbound' ELSE 'outbound' END,
            CASE WHEN k % 2 = 1 THEN 'citizen' ELSE 'staff' END,
            'Een bericht over de zaak.', '{}',
            c.created_at + (k * 6 + random() * 5) * interval '1 hour'
        FROM "case" AS c
        CROSS JOIN LATERAL generate_series(1, 1 + abs(hashtext(c.id::text)) % 7) AS k""",
        f"""INSERT INTO notice (id, agency_id, party_id, topic_id, template_code,
            personalisation, important, dedupe_key, status, reason, subject, body, read_at,
            escalated_at, created_at, updated_at)
        SELECT gen_random_uuid(), j.agency, p.id, 1, 'kans', '{{}}', false, 'bench-' || g,
            CASE WHEN g % 10 = 0 THEN 'not-sent' ELSE 'delivered' END,
            CASE WHEN g % 10 = 0 THEN 'no_consent' END, '', '',
            CASE WHEN g % 3 = 0 THEN t + interval '1 day' END,
            CASE WHEN g % 17 = 0 THEN t + interval '8 days' END, t, t
        FROM generate_series(1, {notices}) AS g
        JOIN bench_journey AS j ON j.n = g % (SELECT count(*) FROM bench_journey)
        JOIN bench_party AS p ON p.n = 1 + g % {PARTIES}
        CROSS JOIN LATERAL (
            SELECT now() - (1 - g::float / {notices}) * interval '{HISTORY_DAYS} days' AS t
        ) AS moment""",  # noqa: S608
    ]


async def fill(url: str, *, cases: int, notices: int) -> dict[str, float]:
    from hub.db import Database, create_all

    database = Database(url)
    await create_all(database)
    await database.dispose()
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        for agency in AGENCIES:
            await connection.execute(
                text(
                    "INSERT INTO agency (id, name, opening_hours, created_at) "
                    "VALUES (:id, :id, '{}', now())"
                ),
                {"id": agency},
            )
        started = time.perf_counter()
        for statement in fill_statements(cases, notices):
            for part in statement.split(";\n"):
                await connection.exec_driver_sql(part)
        filled = time.perf_counter() - started
        await connection.exec_driver_sql("VACUUM ANALYZE")
        counts = {}
        for table in ("case", "message", "notice"):
            counts[table] = (
                await connection.exec_driver_sql(f'SELECT count(*) FROM "{table}"')  # noqa: S608
            ).scalar_one()
        counts["agency_cases"] = (
            await connection.execute(
                text('SELECT count(*) FROM "case" WHERE agency_id = :a'), {"a": AGENCY}
            )
        ).scalar_one()
        size = (
            await connection.exec_driver_sql("SELECT pg_database_size(current_database())")
        ).scalar_one()
    await engine.dispose()
    return {**counts, "fill_seconds": filled, "megabytes": size / 1e6}


async def roll_up(database: Database) -> tuple[int, float]:
    """Every completed day of every agency rolled up, a month of days at a time as the
    delivery worker's rounds do: (days, seconds)."""
    from hub.insights.rollup import DAYS_PER_ROUND, roll_up_agency
    from journeys.catalog import load_catalog

    catalog = load_catalog()
    started = time.perf_counter()
    days = 0
    for agency in AGENCIES:
        while True:
            rolled = await roll_up_agency(
                database,
                catalog=catalog,
                agency_id=agency,
                timezone="Europe/Amsterdam",
            )
            days += rolled
            if rolled < DAYS_PER_ROUND:
                break
    return days, time.perf_counter() - started


async def measure(url: str, repeat: int) -> list[tuple[str, float, float]]:
    from hub.app import create_app
    from hub.auth.api_keys import issue_key
    from hub.auth.sessions import create_session
    from hub.config import Settings
    from hub.db import Database
    from hub.models import StaffMember

    database = Database(url)
    async with database.session() as session:
        staff = StaffMember(
            agency_id=AGENCY, email="supervisor@bench.test", display_name="Bench", role="supervisor"
        )
        session.add(staff)
        await session.flush()
        _, token = await create_session(
            session, subject_kind="staff", subject_id=staff.id, identified_by="bench", hours=1
        )
        _, key = await issue_key(session, agency_id=AGENCY, name="bench")
    settings = Settings(environment="test", database_url=url, run_worker=False)
    app = create_app(settings, database=database)
    today = dt.datetime.now(ZoneInfo(settings.timezone)).date()
    quarter = {"from": (today - dt.timedelta(days=90)).isoformat(), "to": today.isoformat()}
    year = {"from": (today - dt.timedelta(days=364)).isoformat(), "to": today.isoformat()}
    Request = tuple[str, str, dict[str, str], dict[str, str]]
    page: Request = (
        "page /console/insights (4 weeks)",
        "/console/insights",
        {},
        {"hub_session": token},
    )
    requests: list[Request] = [
        page,
        ("GET /api/insights (4 weeks)", "/api/insights", {}, {}),
        ("GET /api/insights?journey=schuldhulp", "/api/insights", {"journey": "schuldhulp"}, {}),
        ("GET /api/insights.csv (13 weeks)", "/api/insights.csv", quarter, {}),
        ("GET /api/insights (a year)", "/api/insights", year, {}),
    ]
    results = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.bench") as client:

            async def ask(
                label: str, path: str, params: dict[str, str], cookies: dict[str, str]
            ) -> None:
                headers = {} if cookies else {"Authorization": f"Bearer {key}"}
                times = []
                for _ in range(repeat + 1):
                    client.cookies.clear()
                    for name, value in cookies.items():
                        client.cookies.set(name, value)
                    started = time.perf_counter()
                    answer = await client.get(path, params=params, headers=headers)
                    times.append((time.perf_counter() - started) * 1000)
                    if answer.status_code != 200:
                        raise SystemExit(f"{label}: {answer.status_code} {answer.text[:300]}")
                results.append((label, times[0], statistics.median(times[1:] or times)))

            await ask("page (4 weeks), no day kept", *page[1:])
            days, seconds = await roll_up(database)
            print(f"rolled up {days:,} days of {len(AGENCIES)} agencies in {seconds:.1f} s")
            for request in requests:
                await ask(*request)
    await database.dispose()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=DEFAULT_ADMIN_URL, help="an admin URL")
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--notices", type=int, default=None, help="default: as many as cases")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    name = f"hub_bench_insights_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    await admin(args.postgres, f'CREATE DATABASE "{name}"')
    url = args.postgres.rsplit("/", 1)[0] + f"/{name}"
    try:
        data = await fill(
            url,
            cases=args.cases,
            notices=args.notices if args.notices is not None else args.cases,
        )
        print(
            f"{data['case']:,} cases ({data['agency_cases']:,} of {AGENCY}), "
            f"{data['message']:,} messages, {data['notice']:,} notices over {HISTORY_DAYS} days; "
            f"filled in {data['fill_seconds']:.1f} s, database {data['megabytes']:,.0f} MB"
        )
        results = await measure(url, args.repeat)
        print(f"{'request':45} {'first ms':>9} {'median ms':>10}")
        for label, first, median in results:
            print(f"{label:45} {first:9.0f} {median:10.0f}")
    finally:
        if args.keep:
            print(f"kept database {name}")
        else:
            await admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
