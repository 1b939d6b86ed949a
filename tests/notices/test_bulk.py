"""A batch of notices is routed exactly as the same notices posted one by one: consent,
channel and fallback, language, portal alert, quiet hours, daily cap, duplicates, and the
rows the single API would refuse."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.db import Database
from hub.errors import InvalidInput
from hub.models import Agency, Notice, OutboxItem, Party, Timer
from hub.notices.bulk import BatchRow, JobContext, route_batch
from hub.notices.routes import notice_request
from hub.notices.schemas import NoticeIn
from hub.notices.service import route_notice, save_template
from journeys.catalog import Catalog, load_catalog
from tests.builders import make_case, make_party
from tests.notices.conftest import BASE_URL, PERSONALISATION, TIMEZONE, World, consent, local

CATALOG = load_catalog(None)


async def cast(session: AsyncSession, world: World) -> list[dict[str, Any]]:
    """Parties in every situation routing knows, and the notices (as the API's JSON) to
    send them: one row each, some twice, some not usable."""
    rows: list[dict[str, Any]] = []

    async def party(granted: bool | None = True, **kwargs: Any) -> Party:
        made = await make_party(session, **kwargs)
        if granted is not None:
            await consent(session, made, world.topic, granted)
        return made

    def row(who: Party, **extra: Any) -> None:
        rows.append(
            {
                "bsn": who.bsn,
                "topic": "allowances",
                "template": "rent",
                "personalisation": PERSONALISATION,
                **extra,
            }
        )

    row(await party(email="mail@example.nl", preferred_channel="email"))
    row(await party(phone="+31612345001", preferred_channel="sms"))
    row(await party(email="portal@example.nl"))  # portal, with an alert mail
    row(await party())  # portal, nobody to alert
    row(await party(granted=None, email="never@example.nl", preferred_channel="email"))
    withdrawn = await party(email="withdrawn@example.nl", preferred_channel="email")
    await consent(session, withdrawn, world.topic, False)
    row(withdrawn)
    row(await party(postal_address="Dorpsstraat 1\n1234 AB Dorp", preferred_channel="letter"))
    plain = await party(email="nodigital@example.nl", postal_address="Laan 2\n2345 CD Stad")
    plain.needs = ["no_digital_contact"]
    plain.preferred_channel = "email"
    session.add(plain)
    row(plain)
    row(await party(email="english@example.nl", preferred_channel="email", language="en"))
    fallback = await party(preferred_channel="email", phone="+31612345002")
    session.add_all([fallback])
    row(fallback)  # no mail address: SMS instead
    unverified = await party(
        email="unverified@example.nl", preferred_channel="email", verified=False
    )
    row(unverified)  # an unverified address is not used: portal
    with_case = await party(email="case@example.nl", preferred_channel="email")
    case = await make_case(session, with_case, agency_id="toeslagen")
    row(with_case, case_id=str(case.id), important=True, escalate_after_days=7)
    busy = await party(email="busy@example.nl", preferred_channel="email")
    for number in range(4):
        row(busy, personalisation={**PERSONALISATION, "start": f"{number + 1} mei"})
    twice = await party(email="twice@example.nl", preferred_channel="email")
    row(twice)
    row(twice)
    keyed = await party(email="keyed@example.nl", preferred_channel="email")
    row(keyed, dedupe_key="rent-2026-keyed")
    row(keyed, dedupe_key="rent-2026-keyed", personalisation={**PERSONALISATION, "start": "x"})
    # Values as the template shows them: their ``str``, whitespace folded in a subject.
    row(
        await party(email="numbers@example.nl", preferred_channel="email"),
        personalisation={"allowance": 12, "start": True},
    )
    row(
        await party(email="none@example.nl", preferred_channel="email"),
        personalisation={"allowance": None, "start": 1.5},
    )
    row(
        await party(email="spaces@example.nl", preferred_channel="email"),
        personalisation={"allowance": "  huur\u00a0\n toeslag\t", "start": "{1 mei} "},
    )
    business = await party(email="bv@example.nl", preferred_channel="email")
    business.kind, business.kvk_number, business.bsn = "business", "90001234", None
    session.add(business)
    await session.flush()
    rows.append({**rows[0], "bsn": None, "kvk_number": "90001234"})
    row(await party(phone="+31612345003", preferred_channel="sms", language="en"))
    # The "brief" template has no text message: an email goes, a text cannot.
    await save_template(
        session,
        agency_id="toeslagen",
        code="brief",
        channel="portal",
        language="nl",
        subject="Brief over {{ allowance }}",
        body="Beste {{ party_name }}, zie {{ allowance }}.",
    )
    row(await party(email="brief@example.nl", preferred_channel="email"), template="brief")
    # Rows the single API refuses with 422.
    row(await party(phone="+31612345004", preferred_channel="sms"), template="brief")
    row(
        await party(phone="+31612345005", preferred_channel="sms"),
        personalisation={**PERSONALISATION, "start": "lang " * 400},  # too long for 10 texts
    )
    row(
        await party(email="subject@example.nl", preferred_channel="email"),
        personalisation={**PERSONALISATION, "allowance": "y" * 400},  # the subject's too long
    )
    row(await party(email="short@example.nl"), personalisation={"allowance": "huurtoeslag"})
    # Line breaks a value brings into the subject are folded; encoded ones are refused.
    row(
        await party(email="encoded@example.nl", preferred_channel="email"),
        personalisation={**PERSONALISATION, "allowance": "huur%0D%0ABcc: x@evil.test"},
    )
    row(
        await party(email="words@example.nl", preferred_channel="email"),
        personalisation={**PERSONALISATION, "allowance": "=?utf-8?q?huur=0A?="},
    )
    rows.append({**rows[0], "bsn": "111222333"})  # a valid BSN nobody has
    rows.append({**rows[0], "bsn": "123456789"})  # fails the eleven-test
    rows.append({**rows[0], "topic": "parking"})
    rows.append({**rows[0], "template": "nothing"})
    rows.append({**rows[0], "journey_id": "no-such-journey"})
    rows.append({**rows[0], "escalate_after_days": 3})
    other = await party(email="other@example.nl", preferred_channel="email")
    rows.append({**rows[0], "case_id": str(case.id), "bsn": other.bsn})  # someone else's case
    await session.flush()
    return rows


Outcome = tuple[Any, ...]


async def outcome(database: Database) -> tuple[list[Outcome], list[Outcome], list[Outcome]]:
    """What the notices did, without ids and times: notices, deliveries, held texts."""
    async with database.session() as session:
        notices = (await session.exec(select(Notice))).all()
        numbers = {n.id: (n.party_id, n.dedupe_key) for n in notices}
        made = sorted(
            (
                str(n.party_id),
                n.dedupe_key,
                n.status,
                n.reason,
                n.channel,
                n.subject,
                n.body,
                n.case_id,
                n.important,
                n.escalate_after_days,
            )
            for n in notices
        )

        def meta(values: dict[str, Any]) -> str:
            kept = {k: v for k, v in values.items() if k not in ("notice_id", "notice_url")}
            return repr(sorted(kept.items()))

        items = (await session.exec(select(OutboxItem))).all()
        sent = sorted(
            (
                str(numbers[i.notice_id]),
                i.channel,
                i.recipient,
                i.subject,
                i.body.split("http://hub.test/notices/")[0],
                i.language,
                meta(i.meta),
                i.case_id,
                i.status,
            )
            for i in items
            if i.notice_id is not None
        )
        timers = (await session.exec(select(Timer))).all()
        held = sorted(
            (t.kind, t.due_at, meta(t.payload["context"]), t.payload["body"]) for t in timers
        )
    return made, sent, held


async def one_by_one(
    database: Database, world: World, rows: list[dict[str, Any]], now: dt.datetime
) -> list[str]:
    errors = []
    for row in rows:
        try:
            async with database.session() as session:
                request = await notice_request(
                    session, "toeslagen", NoticeIn.model_validate(row), CATALOG
                )
                await route_notice(session, request, timezone=TIMEZONE, base_url=BASE_URL, now=now)
        except InvalidInput as refused:
            errors.append(refused.detail)
    return errors


async def in_a_batch(
    database: Database,
    rows: list[dict[str, Any]],
    now: dt.datetime,
    catalog: Catalog = CATALOG,
    *,
    in_database: bool = True,
) -> list[str]:
    async with database.session() as session:
        agency = await session.get(Agency, "toeslagen")
        assert agency is not None
        context = JobContext(agency=agency, catalog=catalog, timezone=TIMEZONE, base_url=BASE_URL)
        batch = [BatchRow(n + 1, "", NoticeIn.model_validate(row)) for n, row in enumerate(rows)]
        result = await route_batch(session, context, batch, now=now, in_database=in_database)
    assert result.accepted + result.not_sent + result.duplicates + len(result.rejections) == len(
        rows
    )
    return [error for _, error, _ in result.rejections]


async def forget_notices(database: Database) -> None:
    async with database.session() as session:
        for table in (Timer, OutboxItem, Notice):
            await (await session.connection()).execute(delete(table))


@pytest.mark.parametrize("in_database", [True, False], ids=["set-based", "row-by-row"])
@pytest.mark.parametrize("hour", [12, 23], ids=["noon", "night"])
async def test_a_batch_routes_every_row_as_the_single_api_does(
    database: Database, world: World, hour: int, in_database: bool
) -> None:
    """On PostgreSQL the batch is decided in the database (set-based) unless a template
    needs Jinja2; row by row otherwise. Both must match the single API exactly."""
    async with database.session() as session:
        rows = await cast(session, world)
    now = local(hour)

    single_errors = await one_by_one(database, world, rows, now)
    single = await outcome(database)
    await forget_notices(database)
    batch_errors = await in_a_batch(database, rows, now, in_database=in_database)
    batch = await outcome(database)

    assert sorted(batch_errors) == sorted(single_errors)
    assert len(batch_errors) == 13
    assert batch == single
    made, sent, held = batch
    statuses = [status for _, _, status, *_ in made]
    assert statuses.count("not-sent") == 3  # never consented, withdrawn, and the daily cap
    assert ("email", "mail@example.nl") in {(s[1], s[2]) for s in sent}
    if hour == 23:
        assert len(held) == 3  # the three texts wait for the morning
        assert not any(s[1] == "sms" for s in sent)
    else:
        assert held == []
        assert sum(1 for s in sent if s[1] == "sms") == 3


async def test_a_notice_made_before_is_a_duplicate_and_not_sent_again(
    database: Database, world: World
) -> None:
    async with database.session() as session:
        party = await make_party(session, email="again@example.nl", preferred_channel="email")
        await consent(session, party, world.topic, True)
    row = {"bsn": party.bsn, "topic": "allowances", "template": "rent"}
    row["personalisation"] = PERSONALISATION
    await one_by_one(database, world, [row], local(12))
    await in_a_batch(database, [row, row], local(13))
    async with database.session() as session:
        count = len((await session.exec(select(OutboxItem))).all())
        notices = (await session.exec(select(Notice))).all()
    assert (count, len(notices)) == (1, 1)


async def test_the_oldest_verified_address_is_used_as_the_single_api_does(
    database: Database, world: World
) -> None:
    from hub.models import DigitalAddress

    async with database.session() as session:
        party = await make_party(session, email="first@example.nl", preferred_channel="email")
        session.add(
            DigitalAddress(
                party_id=party.id,
                kind="email",
                value="second@example.nl",
                verified_at=local(9),
                created_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5),
            )
        )
        await consent(session, party, world.topic, True)
    row = {"bsn": party.bsn, "topic": "allowances", "template": "rent"}
    row["personalisation"] = PERSONALISATION
    await in_a_batch(database, [row], local(12))
    async with database.session() as session:
        item = (await session.exec(select(OutboxItem))).one()
    assert item.recipient == "first@example.nl"


async def test_notices_of_a_batch_record_their_job_row(database: Database, world: World) -> None:
    async with database.session() as session:
        party = await make_party(session, email="rows@example.nl", preferred_channel="email")
        await consent(session, party, world.topic, True)
    rows = [
        {
            "bsn": party.bsn,
            "topic": "allowances",
            "template": "rent",
            "personalisation": {**PERSONALISATION, "start": day},
        }
        for day in ("1 mei", "2 mei")
    ]
    await in_a_batch(database, rows, local(12))
    async with database.session() as session:
        notices = (await session.exec(select(Notice).order_by(col(Notice.job_row)))).all()
    assert [n.job_row for n in notices] == [1, 2]
    assert all(isinstance(n.id, uuid.UUID) for n in notices)


async def test_a_template_that_needs_jinja2_is_routed_row_by_row_with_the_same_outcome(
    database: Database, world: World
) -> None:
    async with database.session() as session:
        await save_template(
            session,
            agency_id="toeslagen",
            code="fancy",
            channel="portal",
            language="nl",
            subject="Recht op {{ allowance | upper }}",
            body="{% if start %}Vanaf {{ start }}.{% else %}Binnenkort.{% endif %}",
        )
        mail = await make_party(session, email="a@example.nl", preferred_channel="email")
        portal = await make_party(session, email="b@example.nl")
        rows = [
            {"bsn": p.bsn, "topic": "allowances", "template": t, "personalisation": PERSONALISATION}
            for p, t in [(mail, "rent"), (portal, "fancy")]
        ]
        for made in (await session.exec(select(Party))).all():
            await consent(session, made, world.topic, True)
    single_errors = await one_by_one(database, world, rows, local(12))
    single = await outcome(database)
    await forget_notices(database)
    assert await in_a_batch(database, rows, local(12)) == single_errors == []
    assert await outcome(database) == single
    assert {n[5] for n in single[0]} == {"Recht op HUURTOESLAG", "Recht op huurtoeslag"}


@pytest.mark.parametrize("database", ["postgres"], indirect=True)  # SQLite has one writer
async def test_a_notice_written_by_someone_else_meanwhile_counts_as_a_duplicate(
    database: Database, world: World
) -> None:
    """Another transaction makes the same notice while the batch runs: the batch waits for
    it, then neither writes a second notice nor sends anything for it."""

    async with database.session() as session:
        party = await make_party(session, email="race@example.nl", preferred_channel="email")
        await consent(session, party, world.topic, True)
    row = {"bsn": party.bsn, "topic": "allowances", "template": "rent", "dedupe_key": "race-1"}
    row["personalisation"] = PERSONALISATION
    async with database.session() as other:
        agency = await other.get(Agency, "toeslagen")
        assert agency is not None
        request = await notice_request(other, "toeslagen", NoticeIn.model_validate(row), CATALOG)
        await route_notice(other, request, timezone=TIMEZONE, base_url=BASE_URL, now=local(12))
        await other.flush()  # written, not yet committed: the batch's look does not see it
        racing = asyncio.create_task(in_a_batch(database, [row], local(12)))
        await asyncio.sleep(0.5)
        assert not racing.done()  # waiting on the other transaction's notice
    assert await racing == []
    async with database.session() as session:
        notices = (await session.exec(select(Notice))).all()
        items = (await session.exec(select(OutboxItem))).all()
    assert len(notices) == 1 and len(items) == 1  # the other's notice and its one mail
