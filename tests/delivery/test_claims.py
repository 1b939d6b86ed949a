"""A claim is never outlived: a message whose claim ran out while it waited behind a slow
send is left to whoever claims it next instead of being sent on the old claim, and giving
up a claim never touches a claim another worker has made since."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlmodel import select

from channels.email.adapter import SmtpAdapter
from hub.config import Settings
from hub.db import Database, utcnow
from hub.delivery.service import enqueue
from hub.delivery.worker import claim_due, deliver_once, record, release
from hub.models import OutboxItem
from hub.ports import AdapterRegistry, DeliveryReport
from tests.email.sink import SmtpSink, smtp_settings


async def fill(database: Database, count: int) -> None:
    async with database.session() as session:
        for number in range(count):
            await enqueue(
                session,
                channel="email",
                recipient=f"burger{number}@example.nl",
                template="notice",
                subject="Uw toeslag",
                body=f"Bericht {number}",
            )


async def rows(database: Database) -> dict[str, OutboxItem]:
    async with database.session() as session:
        return {i.recipient: i for i in (await session.exec(select(OutboxItem))).all()}


async def test_a_message_whose_claim_ran_out_while_waiting_is_not_sent(
    database: Database, settings: Settings
) -> None:
    await fill(database, 3)
    sink = SmtpSink(gate=asyncio.Event())
    await sink.start()
    adapters = AdapterRegistry()
    adapters.register(SmtpAdapter(smtp_settings(settings, sink.port)))
    assert sink.gate is not None
    asyncio.get_running_loop().call_later(0.8, sink.gate.set)  # a server taking 0.8 s
    try:
        sent = await deliver_once(database, adapters, concurrency=1, claim_seconds=0.5)
    finally:
        sink.gate.set()
        await sink.stop()

    # The first went out; by the time it was done the others' claim had nearly run out.
    assert sent == 1
    assert [r.recipients for r in sink.received] == [["burger0@example.nl"]]
    items = await rows(database)
    assert items["burger0@example.nl"].status == "delivered"
    for name in ("burger1@example.nl", "burger2@example.nl"):
        assert items[name].status == "pending"
        assert items[name].attempts == 0 and items[name].claimed_until is None
    assert len(await claim_due(database)) == 2


async def test_giving_up_a_claim_leaves_a_later_claim_alone(database: Database) -> None:
    await fill(database, 2)
    first = utcnow()
    taken = await claim_due(database, claim_seconds=0.05, now=first)
    await asyncio.sleep(0.1)  # the claim runs out, and another worker claims the rows
    again = await claim_due(database, claim_seconds=60)
    assert {m.id for m in again} == {m.id for m in taken}

    await release(database, [m.id for m in taken], claimed_until=first + dt.timedelta(seconds=0.05))

    assert all(i.claimed_until is not None for i in (await rows(database)).values())
    assert await claim_due(database) == []


async def test_a_bounce_recorded_while_the_send_was_under_way_stands(database: Database) -> None:
    """A bounce (or a provider's callback) may write the final status between the server's
    acceptance and the worker's record: the worker's "delivered" must not overwrite it."""
    await fill(database, 2)
    claimed = await claim_due(database, limit=2)
    bounced, accepted = claimed
    async with database.session() as session:
        item = await session.get(OutboxItem, bounced.id)
        assert item is not None
        item.status, item.last_error = "permanent-failure", "550 no such user (bounce)"
        session.add(item)
    for message in claimed:
        report = DeliveryReport("delivered", "smtp", provider_id=f"<{message.id.hex}@hub>")
        await record(database, message.id, report)

    items = {i.id: i for i in (await rows(database)).values()}
    assert items[bounced.id].status == "permanent-failure"
    assert items[bounced.id].last_error == "550 no such user (bounce)"
    assert items[bounced.id].provider_id == f"<{bounced.id.hex}@hub>"
    assert items[accepted.id].status == "delivered"
