"""The access log's triggers are the same whether the schema came from the migrations or from
``create_all``; on PostgreSQL a hub role other than the table's owner may add entries and
drop their party, and nothing else."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from hub.db import Database, create_all
from hub.migrations import upgrade_async
from hub.models.access import ACCESS_LOG_TABLE, POSTGRES_APPEND_ONLY, SEALED_COLUMNS
from tests.conftest import POSTGRES_ADMIN_URL, POSTGRES_UP

TRIGGERS = {
    "sqlite": "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name",
    "postgresql": (
        "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger "
        "WHERE tgrelid = 'access_log'::regclass AND NOT tgisinternal "
        "UNION ALL SELECT proname, prosrc FROM pg_proc WHERE proname = 'access_log_refuse_change' "
        "ORDER BY 1"
    ),
}


def _backends() -> list[Any]:
    skip = [] if POSTGRES_UP else [pytest.mark.skip(reason="PostgreSQL not reachable")]
    return ["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, *skip])]


async def _admin(statement: str) -> None:
    engine = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def _triggers(url: str) -> list[tuple[str, str]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(text(TRIGGERS[engine.dialect.name]))).all()
    finally:
        await engine.dispose()
    return [(name, re.sub(r"\s+", " ", body).strip()) for name, body in rows]


@pytest.fixture(params=_backends())
async def two_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/a.db", f"sqlite+aiosqlite:///{tmp_path}/b.db"
        return
    names = [f"hub_access_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for name in names:
        await _admin(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield tuple(f"{base}/{name}" for name in names)
    finally:
        for name in names:
            await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_migrations_and_create_all_make_the_same_triggers(two_urls: Any) -> None:
    migrated, created = two_urls
    await upgrade_async(migrated)
    database = Database(created)
    try:
        await create_all(database)
    finally:
        await database.dispose()

    found = await _triggers(created)
    assert len(found) >= 2
    assert await _triggers(migrated) == found


@pytest.mark.postgres
async def test_a_hub_role_that_does_not_own_the_log_may_only_add_and_unname(
    database: Database,
) -> None:
    if database.dialect != "postgresql":
        pytest.skip("roles are PostgreSQL's")
    role = f"hub_app_{uuid.uuid4().hex[:8]}"
    await _admin(f"CREATE ROLE {role}")
    try:
        async with database.engine.begin() as connection:
            await connection.execute(text(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}"))
            await connection.execute(text(POSTGRES_APPEND_ONLY[-1]))  # what `hub migrate` runs
        for statement, refused in [
            ("SELECT count(*) FROM access_log", False),
            ("UPDATE access_log SET party_id = NULL", False),
            ("UPDATE access_log SET data = 'x'", True),
            ("DELETE FROM access_log", True),
            ("TRUNCATE access_log", True),
        ]:
            async with database.engine.connect() as connection:
                await connection.execute(text(f"SET ROLE {role}"))
                if refused:
                    with pytest.raises(DBAPIError, match="permission denied"):
                        await connection.execute(text(statement))
                else:
                    await connection.execute(text(statement))
                await connection.rollback()
    finally:
        async with database.engine.begin() as connection:
            await connection.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}"))
            await connection.execute(text(f"REVOKE ALL ON access_log FROM {role}"))
        await _admin(f"DROP ROLE {role}")


def test_sqlites_update_trigger_seals_every_column_but_the_party() -> None:
    """A column added to the log without being added here could be changed on SQLite."""
    assert set(SEALED_COLUMNS) == {c.name for c in ACCESS_LOG_TABLE.columns} - {"party_id"}
