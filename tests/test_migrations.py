"""Migrations build the schema from nothing, on SQLite and PostgreSQL, and match the models.

``test_migrated_schema_matches_models`` fails when a model changes without a migration: write
one with ``alembic -c hub/alembic.ini revision --autogenerate -m "…"`` and review it.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import hub.models  # noqa: F401 - registers every table
from hub.db import metadata
from hub.migrations import (
    MIGRATIONS_DIR,
    alembic_config,
    downgrade,
    head_revision,
    upgrade,
    upgrade_async,
)
from tests.conftest import POSTGRES_ADMIN_URL, POSTGRES_UP


def _backends() -> list[Any]:
    marks: list[Any] = [pytest.mark.postgres]
    if not POSTGRES_UP:
        if os.environ.get("CI") == "true":
            raise RuntimeError("CI=true but PostgreSQL is not reachable on 127.0.0.1:5432")
        marks.append(pytest.mark.skip(reason="PostgreSQL not reachable"))
    return ["sqlite", pytest.param("postgres", marks=marks)]


async def _postgres_admin(statement: str) -> None:
    engine = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(params=_backends())
async def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a database with no tables at all, of its own for this test."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/empty.db"
        return
    name = f"hub_migrations_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    await _postgres_admin(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _inspect(url: str, look: Any) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(look)
    finally:
        await engine.dispose()


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _schema_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_upgrade_from_empty_creates_every_table(empty_database_url: str) -> None:
    await upgrade_async(empty_database_url)

    tables = await _inspect(empty_database_url, _tables)
    assert tables == {*metadata.tables, "alembic_version"}
    assert await _inspect(empty_database_url, _revision) == head_revision()


async def test_migrated_schema_matches_models(empty_database_url: str) -> None:
    await upgrade_async(empty_database_url)

    differences = await _inspect(empty_database_url, _schema_differences)

    assert differences == [], (
        "the models differ from what the migrations build; add a revision with "
        "`alembic -c hub/alembic.ini revision --autogenerate -m '…'` and review it:\n"
        + "\n".join(repr(d) for d in differences)
    )


async def test_upgrade_twice_changes_nothing(empty_database_url: str) -> None:
    await upgrade_async(empty_database_url)
    await upgrade_async(empty_database_url)

    assert await _inspect(empty_database_url, _revision) == head_revision()


async def test_downgrade_to_base_removes_every_table_and_upgrade_restores_them(
    empty_database_url: str,
) -> None:
    await upgrade_async(empty_database_url)

    downgrade(empty_database_url, revision="base")
    assert await _inspect(empty_database_url, _tables) <= {"alembic_version"}

    await upgrade_async(empty_database_url)
    assert await _inspect(empty_database_url, _tables) == {*metadata.tables, "alembic_version"}


async def test_upgrade_works_from_inside_a_running_event_loop(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/in-loop.db"

    upgrade(url)  # blocking, but must not fail for want of a free event loop

    assert await _inspect(url, _revision) == head_revision()


def test_upgrade_creates_the_folder_of_a_new_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/not/yet/there/hub.db"

    upgrade(url)

    assert (tmp_path / "not" / "yet" / "there" / "hub.db").is_file()


def test_revisions_form_one_line_with_dated_file_names() -> None:
    scripts = ScriptDirectory.from_config(alembic_config())

    assert len(scripts.get_heads()) == 1, "two migration heads: merge them or rebase one"
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        assert re.fullmatch(r"\d{4}_\d{2}_\d{2}_[0-9a-z]+_\w+\.py", path.name), path.name
