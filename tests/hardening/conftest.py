"""One app and one world per backend for the whole module: the matrix asks hundreds of
questions of the same world, and building it again for each would cost minutes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text

from hub.app import create_app
from hub.config import Settings
from hub.db import Database, create_all, metadata
from tests.conftest import _backends
from tests.hardening.world import World, make_world

INBOUND_MAIL_SECRET = "inbound-mail-secret-of-the-hub"
TWILIO_TOKEN = "twilio-auth-token-of-the-hub"
METRICS_TOKEN = "metrics-token-of-the-hub"


@pytest.fixture(scope="module", params=_backends())
async def world_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        folder = tmp_path_factory.mktemp("matrix")
        db = Database(f"sqlite+aiosqlite:///{folder}/hub.db")
        await create_all(db)
    else:
        url = request.getfixturevalue("postgres_database_url")
        db = Database(url)
        await create_all(db)
        tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        async with db.engine.begin() as connection:
            # The access log refuses TRUNCATE by trigger; a superuser's replica role skips it.
            await connection.execute(text("SET LOCAL session_replication_role = replica"))
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield db
    await db.dispose()


@pytest.fixture(scope="module")
def world_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path_factory.mktemp("matrix-data"),
        run_worker=False,
        inbound_mail_secret=SecretStr(INBOUND_MAIL_SECRET),
        twilio_auth_token=SecretStr(TWILIO_TOKEN),
        metrics_token=SecretStr(METRICS_TOKEN),
        # The intruders ask hundreds of questions with one key: the limit is tested elsewhere.
        rate_limit_per_minute=0,
    )


@pytest.fixture(scope="module")
async def world_app(world_settings: Settings, world_database: Database) -> AsyncIterator[FastAPI]:
    application = create_app(world_settings, database=world_database)
    async with LifespanManager(application):
        yield application


@pytest.fixture(scope="module")
async def world_client(world_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=world_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as c:
        yield c


@pytest.fixture(scope="module")
async def world(
    world_database: Database, world_client: httpx.AsyncClient, world_settings: Settings
) -> World:
    return await make_world(world_database, world_client, world_settings)
