"""Per-recipient routing of a notice: consent, channel and fallback, dedupe, daily cap,
quiet hours, and the status following the outbox."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import col, select

from hub.db import Database
from hub.errors import InvalidInput
from hub.models import Notice, OutboxItem, Timer
from hub.notices.service import (
    DAILY_CAP,
    QUIET_HOURS_TIMER,
    notice_status_from_outbox,
    release_held_notices,
)
from hub.timers.service import fire_due_timers
from journeys.catalog import load_catalog
from tests.builders import make_party
from tests.notices.conftest import TIMEZONE, World, consent, local, notify


async def outbox_of(database: Database, notice: Notice) -> list[OutboxItem]:
    async with database.session() as session:
        query = (
            select(OutboxItem)
            .where(OutboxItem.notice_id == notice.id)
            .order_by(col(OutboxItem.created_at))
        )
        return list((await session.exec(query)).all())


async def test_without_consent_nothing_is_sent_and_it_is_counted(
    database: Database, world: World
) -> None:
    async with database.session() as session:
        never = await make_party(session, email="a@example.nl", preferred_channel="email")
        withdrawn = await make_party(session, email="b@example.nl", preferred_channel="email")
        await consent(session, withdrawn, world.topic, True)
        await consent(session, withdrawn, world.topic, False)
        first = await notify(session, world, never)
        second = await notify(session, world, withdrawn)
    for routed in (first, second):
        assert routed.created
        assert (routed.notice.status, routed.notice.reason) == ("not-sent", "no_consent")
        assert routed.notice.channel is None
        assert await outbox_of(database, routed.notice) == []
    async with database.session() as session:
        counted = (await session.exec(select(Notice).where(Notice.reason == "no_consent"))).all()
    assert len(counted) == 2


@pytest.mark.parametrize(
    ("addresses", "channel", "recipient"),
    [
        ({"email": "piet@example.nl", "phone": "+31612345678"}, "email", "piet@example.nl"),
        (
            {"phone": "+31612345678", "postal_address": "Dorpsstraat 1\n1234 AB Ons Dorp"},
            "sms",
            "+31612345678",
        ),
        (
            {"postal_address": "Dorpsstraat 1\n1234 AB Ons Dorp"},
            "letter",
            "Dorpsstraat 1\n1234 AB Ons Dorp",
        ),
    ],
)
async def test_preferred_email_falls_back_to_sms_then_letter(
    database: Database,
    world: World,
    addresses: dict[str, str],
    channel: str,
    recipient: str,
) -> None:
    async with database.session() as session:
        party = await make_party(
            session,
            preferred_channel="email",
            email=addresses.get("email"),
            phone=addresses.get("phone"),
            postal_address=addresses.get("postal_address"),
        )
        await consent(session, party, world.topic, True)
        routed = await notify(session, world, party)
    notice = routed.notice
    assert (notice.status, notice.channel) == ("sending", channel)
    [item] = await outbox_of(database, notice)
    assert (item.channel, item.recipient) == (channel, recipient)
    # Each channel gets its own template's text; the letter falls back to the portal text.
    expected = {
        "email": "U heeft mogelijk recht op huurtoeslag vanaf 1 april. Kijk op toeslagen.example.",
        "sms": "Toeslagen: mogelijk recht op huurtoeslag vanaf 1 april.",
        "letter": f"Beste {party.name}, u heeft mogelijk recht op huurtoeslag vanaf 1 april.",
    }[channel]
    assert item.body == expected
    assert notice.body.endswith("u heeft mogelijk recht op huurtoeslag vanaf 1 april.")


async def test_unverified_address_is_not_used(database: Database, world: World) -> None:
    async with database.session() as session:
        party = await make_party(
            session, email="x@example.nl", verified=False, preferred_channel="email"
        )
        await consent(session, party, world.topic, True)
        routed = await notify(session, world, party)
    # No usable address at all: the notice is in the portal only.
    assert (routed.notice.status, routed.notice.channel) == ("delivered", "portal")
    assert await outbox_of(database, routed.notice) == []


async def test_portal_preference_stores_it_with_an_email_alert(
    database: Database, world: World
) -> None:
    async with database.session() as session:
        party = await make_party(
            session, email="lot@example.nl", preferred_channel="portal", language="en"
        )
        await consent(session, party, world.topic, True)
        routed = await notify(session, world, party)
    notice = routed.notice
    assert (notice.status, notice.channel) == ("delivered", "portal")
    assert notice.subject == "Right to huurtoeslag"
    [alert] = await outbox_of(database, notice)
    assert (alert.channel, alert.recipient) == ("email", "lot@example.nl")
    assert f"http://hub.test/notices/{notice.id}" in alert.body
    assert "Right to huurtoeslag" in alert.body
    # The alert's delivery does not change the notice: it was delivered in the portal.
    async with database.session() as session:
        alert.status = "permanent-failure"
        assert await notice_status_from_outbox(session, alert) is None
        assert (await session.get(Notice, notice.id)).status == "delivered"  # type: ignore[union-attr]


async def test_missing_placeholder_is_refused_before_anything_is_stored(
    database: Database, world: World
) -> None:
    async with database.session() as session:
        party = await make_party(session, phone="+31612345678", preferred_channel="sms")
        await consent(session, party, world.topic, True)
    with pytest.raises(InvalidInput) as refused:
        async with database.session() as session:
            await notify(session, world, party, personalisation={"allowance": "zorgtoeslag"})
    assert refused.value.extra["missing"] == ["start"]
    async with database.session() as session:
        assert (await session.exec(select(Notice))).all() == []
        assert (await session.exec(select(OutboxItem))).all() == []


async def test_same_notice_twice_is_one_notice_and_one_delivery(
    database: Database, world: World
) -> None:
    async with database.session() as session:
        party = await make_party(session, email="a@example.nl", preferred_channel="email")
        await consent(session, party, world.topic, True)
        first = await notify(session, world, party, dedupe_key="rent-2026-a")
    async with database.session() as session:
        again = await notify(session, world, party, dedupe_key="rent-2026-a")
        # Without a key of its own, the same content to the same party is the same notice.
        hashed = await notify(session, world, party)
    async with database.session() as session:
        hashed_again = await notify(session, world, party)
    assert first.created and not again.created
    assert again.notice.id == first.notice.id
    assert hashed.created and not hashed_again.created
    assert hashed_again.notice.id == hashed.notice.id
    assert len(await outbox_of(database, first.notice)) == 1
    assert len(await outbox_of(database, hashed.notice)) == 1


async def test_daily_cap_per_party_and_local_day(database: Database, world: World) -> None:
    async with database.session() as session:
        party = await make_party(session, email="a@example.nl", preferred_channel="email")
        await consent(session, party, world.topic, True)
        outcomes = [
            await notify(session, world, party, at=local(9 + n), dedupe_key=f"n{n}")
            for n in range(DAILY_CAP + 1)
        ]
        # 00:30 the next morning in Amsterdam is 23:30 UTC the day before: a new local day.
        tomorrow = await notify(session, world, party, at=local(0, 30, day=3), dedupe_key="next")
    statuses = [(r.notice.status, r.notice.reason) for r in outcomes]
    assert statuses == [("sending", None)] * DAILY_CAP + [("not-sent", "daily_cap")]
    assert tomorrow.notice.status == "sending"
    assert len(await outbox_of(database, outcomes[-1].notice)) == 0


async def test_text_in_quiet_hours_is_held_until_eight(database: Database, world: World) -> None:
    async with database.session() as session:
        party = await make_party(session, phone="+31612345678", preferred_channel="sms")
        await consent(session, party, world.topic, True)
        evening = await notify(session, world, party, at=local(22, 15), dedupe_key="evening")
        withdrawn = await make_party(session, phone="+31687654321", preferred_channel="sms")
        await consent(session, withdrawn, world.topic, True)
        stopped = await notify(session, world, withdrawn, at=local(23), dedupe_key="stopped")
    notice = evening.notice
    assert (notice.status, notice.reason, notice.channel) == ("created", "quiet_hours", "sms")
    assert await outbox_of(database, notice) == []
    async with database.session() as session:
        timers = (await session.exec(select(Timer).where(Timer.kind == QUIET_HOURS_TIMER))).all()
        assert {t.due_at for t in timers} == {local(8, day=3)}
        # The citizen withdraws consent during the night: that text never goes.
        await consent(session, withdrawn, world.topic, False)

    assert await release_held_notices(database, local(7, 59, day=3)) == 0
    # The worker's generic timer round may see the timer first: the text is not lost.
    await fire_due_timers(database, catalog=load_catalog(), broker=None, timezone=TIMEZONE)
    assert await release_held_notices(database, local(8, day=3)) == 1
    assert await release_held_notices(database, local(8, 1, day=3)) == 0

    [item] = await outbox_of(database, notice)
    assert (item.channel, item.recipient) == ("sms", "+31612345678")
    assert item.body == "Toeslagen: mogelijk recht op huurtoeslag vanaf 1 april."
    async with database.session() as session:
        released = await session.get(Notice, notice.id)
        never = await session.get(Notice, stopped.notice.id)
    assert released is not None and (released.status, released.reason) == ("sending", None)
    assert never is not None and (never.status, never.reason) == ("not-sent", "no_consent")


async def test_email_is_not_held_at_night(database: Database, world: World) -> None:
    async with database.session() as session:
        party = await make_party(session, email="a@example.nl", preferred_channel="email")
        await consent(session, party, world.topic, True)
        routed = await notify(session, world, party, at=local(23, 30))
    assert routed.notice.status == "sending"
    assert len(await outbox_of(database, routed.notice)) == 1


@pytest.mark.parametrize(
    ("outbox_statuses", "final"),
    [
        (["sending", "delivered"], "delivered"),
        (["sending", "permanent-failure"], "permanent-failure"),
        (["technical-failure"], "technical-failure"),
    ],
)
async def test_status_follows_the_outbox(
    database: Database, world: World, outbox_statuses: list[str], final: str
) -> None:
    async with database.session() as session:
        party = await make_party(session, email="a@example.nl", preferred_channel="email")
        await consent(session, party, world.topic, True)
        routed = await notify(session, world, party)
    assert routed.notice.status == "sending"
    [item] = await outbox_of(database, routed.notice)
    seen = []
    for outbox_status in outbox_statuses:
        async with database.session() as session:
            row = await session.get(OutboxItem, item.id)
            assert row is not None
            row.status = outbox_status
            session.add(row)
            changed = await notice_status_from_outbox(session, row)
            seen.append(changed.status if changed else None)
    # "sending" is no change for a notice that is sending already.
    assert seen[-1] == final
    async with database.session() as session:
        notice = await session.get(Notice, routed.notice.id)
    assert notice is not None and notice.status == final


async def test_a_bounce_passes_the_notice_to_the_next_channel(
    database: Database, world: World
) -> None:
    async with database.session() as session:
        party = await make_party(
            session,
            email="gone@example.nl",
            phone="+31612345678",
            postal_address="Dorpsstraat 1\n1234 AB Ons Dorp",
            preferred_channel="email",
        )
        await consent(session, party, world.topic, True)
        routed = await notify(session, world, party)
    for bounced, at, expected in [
        ("email", local(12), ("sending", None, "sms")),
        ("sms", local(22), ("sending", None, "letter")),
        ("letter", local(12), ("permanent-failure", None, "letter")),
    ]:
        async with database.session() as session:
            [row] = (
                await session.exec(
                    select(OutboxItem).where(
                        OutboxItem.notice_id == routed.notice.id, OutboxItem.channel == bounced
                    )
                )
            ).all()
            row.status = "permanent-failure"
            session.add(row)
            changed = await notice_status_from_outbox(session, row, timezone=TIMEZONE, now=at)
            assert changed is not None
            assert (changed.status, changed.reason, changed.channel) == expected
            # The worker and a channel's callback may both report the bounce: one fallback.
            assert await notice_status_from_outbox(session, row, timezone=TIMEZONE, now=at) is None
    items = await outbox_of(database, routed.notice)
    assert [(i.channel, i.meta["tried"]) for i in items] == [
        ("email", ["email"]),
        ("sms", ["email", "sms"]),
        ("letter", ["email", "sms", "letter"]),
    ]
    assert items[1].body == "Toeslagen: mogelijk recht op huurtoeslag vanaf 1 april."


async def test_a_bounce_to_a_text_at_night_is_held(database: Database, world: World) -> None:
    async with database.session() as session:
        party = await make_party(
            session, email="gone@example.nl", phone="+31612345678", preferred_channel="email"
        )
        await consent(session, party, world.topic, True)
        routed = await notify(session, world, party, at=local(20, 55))
    [row] = await outbox_of(database, routed.notice)
    async with database.session() as session:
        row.status = "permanent-failure"
        changed = await notice_status_from_outbox(session, row, timezone=TIMEZONE, now=local(21, 5))
        again = await notice_status_from_outbox(session, row, timezone=TIMEZONE, now=local(21, 5))
    assert again is None
    assert changed is not None
    assert (changed.status, changed.reason, changed.channel) == ("created", "quiet_hours", "sms")
    assert await release_held_notices(database, local(8, day=3)) == 1
    assert [i.channel for i in await outbox_of(database, routed.notice)] == ["email", "sms"]


async def test_the_same_notice_posted_at_once_is_still_one(
    database: Database, world: World
) -> None:
    async with database.session() as session:
        party = await make_party(session, email="a@example.nl", preferred_channel="email")
        await consent(session, party, world.topic, True)

    async def post() -> Notice:
        async with database.session() as session:
            return (await notify(session, world, party, dedupe_key="once")).notice

    notices = await asyncio.gather(*(post() for _ in range(4)))
    assert len({n.id for n in notices}) == 1
    assert len(await outbox_of(database, notices[0])) == 1
