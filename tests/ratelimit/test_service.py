"""The token bucket, in memory and in Redis (db 15): a burst, then a wait that the refill
ends; a clock that goes back adds nothing; Redis out of reach lets requests through."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from hub.ratelimit import service
from hub.ratelimit.service import Buckets, MemoryBuckets, RedisBuckets, Verdict
from tests.conftest import REDIS_UP, REDIS_URL


class Clock:
    """Wall-clock seconds that only move when a test moves them."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _backends() -> list[object]:
    redis_marks = [] if REDIS_UP else [pytest.mark.skip(reason="Redis not reachable")]
    return ["memory", pytest.param("redis", marks=redis_marks)]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=_backends())
async def buckets(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[Buckets]:
    """Three tokens at most, one more every ten seconds."""
    store: Buckets
    if request.param == "memory":
        store = MemoryBuckets(rate=0.1, burst=3, clock=clock)
    else:
        store = RedisBuckets.from_url(REDIS_URL, rate=0.1, burst=3, clock=clock)
        store.namespace = f"test:ratelimit:{uuid.uuid4().hex}"
    yield store
    await store.close()


async def test_a_burst_then_a_wait_of_whole_seconds(buckets: Buckets) -> None:
    assert [await buckets.take("abcd1234") for _ in range(3)] == [Verdict(True)] * 3
    assert await buckets.take("abcd1234") == Verdict(False, 10)
    # Another key has a bucket of its own.
    assert await buckets.take("efgh5678") == Verdict(True)


async def test_the_bucket_refills_over_time(buckets: Buckets, clock: Clock) -> None:
    for _ in range(3):
        await buckets.take("abcd1234")
    clock.now += 4.5
    assert await buckets.take("abcd1234") == Verdict(False, 6)  # 0.45 of a token: 5.5 s to go
    clock.now += 5.5
    assert await buckets.take("abcd1234") == Verdict(True)
    assert await buckets.take("abcd1234") == Verdict(False, 10)
    clock.now += 3600  # a long pause fills the bucket, never beyond the burst
    assert [(await buckets.take("abcd1234")).allowed for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]


async def test_a_clock_that_goes_back_adds_no_tokens(buckets: Buckets, clock: Clock) -> None:
    for _ in range(3):
        await buckets.take("abcd1234")
    clock.now -= 60
    assert not (await buckets.take("abcd1234")).allowed
    clock.now += 60 + 10
    assert (await buckets.take("abcd1234")).allowed


async def test_the_wait_is_at_least_a_second() -> None:
    fast = MemoryBuckets(rate=1000.0, burst=1, clock=Clock())
    await fast.take("abcd1234")
    assert await fast.take("abcd1234") == Verdict(False, 1)


async def test_without_redis_requests_go_through() -> None:
    unreachable = RedisBuckets.from_url("redis://127.0.0.1:1/0", rate=0.1, burst=1, clock=Clock())
    try:
        assert [(await unreachable.take("abcd1234")).allowed for _ in range(3)] == [True] * 3
    finally:
        await unreachable.close()


async def test_memory_stays_bounded_under_made_up_prefixes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "MAX_MEMORY_BUCKETS", 10)
    clock = Clock()
    buckets = MemoryBuckets(rate=0.1, burst=1, clock=clock)
    assert (await buckets.take("realkey1")).allowed
    for number in range(100):
        clock.now += 0.01
        await buckets.take(f"made{number:04d}")
        assert len(buckets._state) <= 20
        # The key in use is among the recently used: kept, and still empty.
        assert not (await buckets.take("realkey1")).allowed
