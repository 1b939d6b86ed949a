"""In-process fan-out: a follower that falls behind is told so; presence and claims lapse."""

from __future__ import annotations

import asyncio
import uuid

from hub.events.fanout import Interruption, LiveEvent, MemoryBroker, Signal, events_of


def event(case_id: uuid.UUID, seq: int) -> LiveEvent:
    return LiveEvent(str(case_id), seq, "message", "citizen", "citizen", "Jan", {}, "")


async def test_a_follower_that_falls_behind_gets_lagged_instead_of_blocking_the_publisher() -> None:
    broker = MemoryBroker(queue_size=3)
    case_id = uuid.uuid4()
    async with broker.follow(case_id) as follower:
        for seq in range(1, 6):
            await broker.publish(event(case_id, seq))
        first = await follower.get()
        assert first is Interruption.LAGGED or (isinstance(first, LiveEvent) and first.seq > 1)
        items = [first]
        while (item := follower.get_nowait()) is not None:
            items.append(item)
        assert Interruption.LAGGED in items  # told to read the log, not silently short
    assert await broker.citizen_online(case_id) is False


async def test_signals_reach_followers_of_that_case_only() -> None:
    broker = MemoryBroker()
    case_id, other = uuid.uuid4(), uuid.uuid4()
    async with broker.follow(case_id) as follower, broker.follow(other) as bystander:
        typing = Signal(str(case_id), "typing", "c1", {"kind": "citizen", "name": "Jan"})
        await broker.signal(typing)
        assert await follower.get() == typing
        assert bystander.get_nowait() is None


async def test_presence_and_claims() -> None:
    broker = MemoryBroker()
    case_id = uuid.uuid4()
    await broker.citizen_here(case_id, "c1")
    await broker.citizen_here(case_id, "c2")
    await broker.citizen_gone(case_id, "c1")
    assert await broker.citizen_online(case_id)
    await broker.citizen_gone(case_id, "c2")
    assert not await broker.citizen_online(case_id)
    assert await broker.claim_once("ticket:n1", 30)
    assert not await broker.claim_once("ticket:n1", 30)
    assert await broker.claim_once("ticket:n2", -1)
    assert await broker.claim_once("ticket:n2", 30)  # the first claim had lapsed


async def test_closing_the_broker_ends_its_followers() -> None:
    broker = MemoryBroker()
    case_id = uuid.uuid4()
    received: list[LiveEvent] = []

    async def follow() -> None:
        async for item in events_of(broker, case_id):
            received.append(item)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0)
    await broker.publish(event(case_id, 1))
    await broker.close()
    await asyncio.wait_for(task, 1)
    assert [e.seq for e in received] == [1]
