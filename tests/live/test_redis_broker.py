"""The Redis broker against a real Redis: fan-out between two brokers (as two processes
would have), presence with a time-to-live, single-use claims, and a lost connection."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis
from redis.exceptions import RedisError

from hub.events.fanout import Interruption, LiveEvent, Signal, connect_broker
from hub.events.redis_broker import RedisBroker
from tests.conftest import REDIS_UP, REDIS_URL

pytestmark = pytest.mark.redis

if os.environ.get("CI") == "true" and not REDIS_UP:
    raise RuntimeError("CI=true but Redis is not reachable on 127.0.0.1:6379")
if not REDIS_UP:
    pytest.skip("Redis not reachable", allow_module_level=True)


def event(case_id: uuid.UUID, seq: int) -> LiveEvent:
    return LiveEvent(
        case_id=str(case_id),
        seq=seq,
        kind="message",
        audience="citizen",
        actor_kind="citizen",
        actor_name="Jan",
        payload={"body": f"line {seq}"},
        created_at="2026-11-28T19:00:00+00:00",
    )


@pytest.fixture
async def brokers() -> AsyncIterator[tuple[RedisBroker, RedisBroker]]:
    prefix = f"hub-test-{uuid.uuid4().hex[:8]}"
    first = await RedisBroker.connect(REDIS_URL, prefix=prefix)
    second = await RedisBroker.connect(REDIS_URL, prefix=prefix)
    yield first, second
    await first.close()
    await second.close()


async def next_item(follower: object) -> object:
    return await asyncio.wait_for(follower.get(), 3)  # type: ignore[attr-defined]


async def test_events_and_signals_cross_between_brokers_once(
    brokers: tuple[RedisBroker, RedisBroker],
) -> None:
    here, there = brokers
    case_id = uuid.uuid4()
    async with here.follow(case_id) as local, there.follow(case_id) as remote:
        await here.publish(event(case_id, 1))
        assert await next_item(local) == event(case_id, 1)
        assert await next_item(remote) == event(case_id, 1)
        typing = Signal(str(case_id), "typing", "conn-1", {"kind": "citizen", "name": "Jan"})
        await there.signal(typing)
        assert await next_item(here_follower := local) == typing
        assert await next_item(remote) == typing
        await asyncio.sleep(0.2)
        # Each arrived once: the publisher's own copy from Redis is skipped.
        assert here_follower.get_nowait() is None and remote.get_nowait() is None
    async with there.follow(uuid.uuid4()) as other_case:
        await here.publish(event(case_id, 2))
        await asyncio.sleep(0.2)
        assert other_case.get_nowait() is None


async def test_presence_is_shared_and_lapses(brokers: tuple[RedisBroker, RedisBroker]) -> None:
    here, there = brokers
    case_id = uuid.uuid4()
    assert not await there.citizen_online(case_id)
    await here.citizen_here(case_id, "conn-1")
    assert await there.citizen_online(case_id)
    await here.citizen_gone(case_id, "conn-1")
    assert not await there.citizen_online(case_id)
    # A connection that stops refreshing (a process that died) lapses by itself.
    await here.client.zadd(f"{here.prefix}:online:{case_id}", {"dead": 1.0})
    assert not await there.citizen_online(case_id)


async def test_claims_work_once_across_brokers(brokers: tuple[RedisBroker, RedisBroker]) -> None:
    here, there = brokers
    key = uuid.uuid4().hex
    assert await here.claim_once(key, 30)
    assert not await there.claim_once(key, 30)
    assert not await here.claim_once(key, 30)


async def test_a_lost_connection_tells_followers_to_resume_from_the_log(
    brokers: tuple[RedisBroker, RedisBroker],
) -> None:
    here, there = brokers
    case_id = uuid.uuid4()
    async with there.follow(case_id) as follower:
        admin = redis.Redis.from_url(REDIS_URL)
        try:
            name = f"{there.prefix}-live-{there.origin[:12]}"
            clients = await admin.client_list()
            ids = [c["id"] for c in clients if c.get("name") == name and "subscribe" in c["cmd"]]
            assert ids, "the broker's pub/sub connection is not named"
            for client_id in ids:
                await admin.client_kill_filter(_id=client_id)
        finally:
            await admin.aclose()
        assert await next_item(follower) is Interruption.LAGGED
        for _ in range(50):  # it resubscribes by itself
            await here.publish(event(case_id, 7))
            item = await asyncio.wait_for(follower.get(), 3)
            if item == event(case_id, 7):
                break
        else:
            raise AssertionError("no events after the reconnect")


async def test_connect_broker_chooses_by_setting() -> None:
    memory = await connect_broker(None)
    assert type(memory).__name__ == "MemoryBroker"
    await memory.close()
    shared = await connect_broker(REDIS_URL)
    assert isinstance(shared, RedisBroker)
    await shared.close()
    with pytest.raises(RedisError):
        await connect_broker("redis://127.0.0.1:1/0")
