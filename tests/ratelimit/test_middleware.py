"""The rate limit on the hub's API, on SQLite and PostgreSQL: an agency key's burst, then 429
with Retry-After; citizens and staff not counted; two hubs sharing Redis share the bucket;
the refill seen through the middleware with a clock the test moves."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.types import Receive, Scope, Send

from hub.app import create_app
from hub.config import Settings
from hub.db import Database
from hub.ratelimit.middleware import RateLimit
from hub.ratelimit.service import MemoryBuckets
from tests.builders import (
    bearer,
    key_for,
    make_agency,
    make_case,
    make_party,
    make_staff,
    token_for,
)
from tests.conftest import REDIS_UP, REDIS_URL
from tests.ratelimit.test_service import Clock

needs_redis = pytest.mark.skipif(not REDIS_UP, reason="Redis not reachable")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Three requests at once, then one every ten seconds."""
    return Settings(
        environment="test",
        data_dir=tmp_path,
        run_worker=False,
        rate_limit_per_minute=6,
        rate_limit_burst=3,
    )


@pytest.fixture
async def world(database: Database) -> dict[str, Any]:
    async with database.session() as session:
        await make_agency(session, "toeslagen", activities=("vragen-beantwoorden",))
        staff = await make_staff(session, "toeslagen")
        case = await make_case(session, await make_party(session, "Anna"))
    return {
        "case_url": f"/api/cases/{case.id}",
        "key": await key_for(database, "toeslagen"),
        "other_key": await key_for(database, "toeslagen"),
        "staff": await token_for(database, "staff", staff.id),
    }


async def test_an_agency_key_gets_its_burst_then_429_with_retry_after(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    for _ in range(3):
        assert (
            await client.get(world["case_url"], headers=bearer(world["key"]))
        ).status_code == 200
    refused = await client.get(world["case_url"], headers=bearer(world["key"]))
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "10"
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 429
    assert "x-request-id" in refused.headers
    # The agency's other key, and the same key given as X-API-Key, are separate buckets...
    other = await client.get(world["case_url"], headers=bearer(world["other_key"]))
    assert other.status_code == 200
    # ...but a header name is no way around the limit for the same key.
    again = await client.get(world["case_url"], headers={"X-API-Key": world["key"]})
    assert again.status_code == 429


async def test_staff_are_not_limited_by_the_agency_limit(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    for _ in range(10):
        response = await client.get(world["case_url"], headers=bearer(world["staff"]))
        assert response.status_code == 200


async def test_a_wrong_secret_under_a_real_prefix_draws_from_that_bucket(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    prefix = world["key"].split("_")[1]
    forged = f"hub_{prefix}_{'x' * 43}"
    statuses = [
        (await client.get(world["case_url"], headers=bearer(forged))).status_code for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]


@needs_redis
async def test_two_hubs_sharing_redis_share_the_bucket(
    settings: Settings, database: Database, world: dict[str, Any]
) -> None:
    shared = settings.model_copy(update={"redis_url": REDIS_URL})
    async with running(shared, database) as first, running(shared, database) as second:
        headers = bearer(world["key"])
        assert (await first.get(world["case_url"], headers=headers)).status_code == 200
        assert (await second.get(world["case_url"], headers=headers)).status_code == 200
        assert (await first.get(world["case_url"], headers=headers)).status_code == 200
        assert (await second.get(world["case_url"], headers=headers)).status_code == 429
        assert (await first.get(world["case_url"], headers=headers)).status_code == 429


@needs_redis
async def test_one_hub_without_redis_has_a_bucket_of_its_own(
    settings: Settings, database: Database, world: dict[str, Any]
) -> None:
    shared = settings.model_copy(update={"redis_url": REDIS_URL})
    async with running(shared, database) as first, running(settings, database) as alone:
        headers = bearer(world["key"])
        for _ in range(3):
            assert (await first.get(world["case_url"], headers=headers)).status_code == 200
        assert (await first.get(world["case_url"], headers=headers)).status_code == 429
        assert (await alone.get(world["case_url"], headers=headers)).status_code == 200


@asynccontextmanager
async def running(settings: Settings, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    """A hub of its own over ``database``, with a client to it."""
    app = create_app(settings, database=database)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
            yield client


async def test_the_middleware_lets_requests_through_again_as_the_bucket_refills(
    settings: Settings,
) -> None:
    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    clock = Clock()
    limited = RateLimit(
        answer, settings=settings, buckets=MemoryBuckets(rate=0.1, burst=3, clock=clock)
    )
    headers = bearer(f"hub_abcd1234_{uuid.uuid4().hex}")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=limited), base_url="http://hub.test"
    ) as client:

        async def status() -> int:
            return (await client.post("/api/cases", headers=headers)).status_code

        assert [await status() for _ in range(4)] == [204, 204, 204, 429]
        clock.now += 9
        refused = await client.post("/api/cases", headers=headers)
        assert (refused.status_code, refused.headers["retry-after"]) == (429, "1")
        clock.now += 1
        assert await status() == 204
        assert await status() == 429
        clock.now += 30
        assert [await status() for _ in range(4)] == [204, 204, 204, 429]


async def test_a_rate_of_zero_turns_the_limit_off(tmp_path: Path, database: Database) -> None:
    off = Settings(environment="test", data_dir=tmp_path, run_worker=False, rate_limit_per_minute=0)
    async with database.session() as session:
        await make_agency(session, "toeslagen")
    key = await key_for(database, "toeslagen")
    async with running(off, database) as client:
        for _ in range(70):
            response = await client.get("/api/cases", headers=bearer(key))
            assert response.status_code == 200
