"""Migrations build the schema from nothing, on SQLite and PostgreSQL, and match the models;
a database left at any earlier revision, with rows in every table, upgrades without losing one.

``test_migrated_schema_matches_models`` fails when a model changes without a migration: write
one with ``alembic -c hub/alembic.ini revision --autogenerate -m "…"`` and review it.

``test_upgrade_keeps_the_rows_of_an_earlier_revision`` runs once per revision found in the
script directory, so a new revision is covered as soon as it is written. It fills the tables
as they stood at that revision with rows made from their reflected columns, so it needs no
editing either — unless a migration rewrites values on purpose (list those columns in
``REWRITTEN``) or adds a column type the sample values do not know yet (``_sample``).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
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


# -- upgrading a database that holds data -----------------------------------------------------

# (table, column) whose values a migration rewrites on purpose; every other value that has a
# column to go to at the head must arrive there unchanged.
REWRITTEN: frozenset[tuple[str, str]] = frozenset()

Row = dict[str, Any]


def _chain() -> list[str]:
    """Every revision, oldest first, as the script directory has them."""
    scripts = ScriptDirectory.from_config(alembic_config())
    return [script.revision for script in reversed(list(scripts.walk_revisions()))]


def _reflect(connection: Connection) -> sa.MetaData:
    reflected = sa.MetaData()
    reflected.reflect(connection)
    return reflected


# Values the hub itself writes, for columns whose model names no default: a migration that
# rewrites rows by what they hold then finds rows to rewrite.
WRITTEN_BY_THE_HUB: dict[str, str] = {
    "channel": "email",
    "preferred_channel": "email",
    "reply_channel": "email",
    "opened_channel": "webchat",
    "language": "nl",
    "preferred_language": "nl",
    "direction": "outbound",
    "actor_kind": "staff",
    "author_kind": "staff",
    "subject_kind": "citizen",
    "recorded_by_kind": "citizen",
    "uploaded_by_kind": "citizen",
}


def _as_the_hub_writes(column: sa.Column[Any]) -> Any:
    """The default the model gives ``column`` (status "pending", role "agent" …), else a
    value from ``WRITTEN_BY_THE_HUB``; None when neither says."""
    model = metadata.tables.get(column.table.name)
    default = model.c[column.name].default if model is not None and column.name in model.c else None
    if isinstance(default, sa.ColumnDefault) and default.is_scalar:
        return default.arg
    if isinstance(column.type, sa.String):
        return WRITTEN_BY_THE_HUB.get(column.name)
    return None


def _sample(column: sa.Column[Any], n: int, dialect: str) -> Any:
    """A value for ``column``: as the hub writes it where that is known, otherwise one that
    no other sample repeats (``n`` differs each time)."""
    usual = _as_the_hub_writes(column)
    if usual is not None:
        return usual
    kind = column.type
    if isinstance(kind, sa.Uuid):
        return uuid.UUID(int=n)
    if isinstance(kind, sa.CHAR) and kind.length == 32 and dialect == "sqlite":
        return uuid.UUID(int=n).hex  # how sa.Uuid stores itself on SQLite
    if isinstance(kind, sa.Boolean):
        return True
    if isinstance(kind, sa.Integer):
        return 1000 + n
    if isinstance(kind, sa.DateTime):
        moment = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC) + dt.timedelta(minutes=n)
        return moment.replace(tzinfo=None) if dialect == "sqlite" else moment
    if isinstance(kind, sa.Date):
        return dt.date(2026, 1, 1) + dt.timedelta(days=n)
    if isinstance(kind, sa.JSON):
        return {"sample": n, "items": [column.name]}
    if isinstance(kind, sa.String):
        value = f"{column.name} {n}"
        length = kind.length or len(value)
        return value if len(value) <= length else str(n)[-length:]
    if isinstance(kind, sa.Float | sa.Numeric):
        return n + 0.5
    raise TypeError(f"no sample value for {column.table.name}.{column.name} ({kind!r}): add one")


def _generated_key(table: sa.Table) -> sa.Column[Any] | None:
    """The integer primary key the database numbers itself, if ``table`` has one."""
    key = list(table.primary_key.columns)
    if len(key) == 1 and isinstance(key[0].type, sa.Integer) and not key[0].foreign_keys:
        return key[0]
    return None


def _fill(connection: Connection) -> dict[str, list[Row]]:
    """Two rows in every table, parents first: one with every column given, one with only
    the NOT NULL ones. A row's foreign keys point at the row of the same place in its parent."""
    dialect = connection.dialect.name
    if dialect == "sqlite":
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
    counter = iter(range(1, 1_000_000))
    rows: dict[str, list[Row]] = {}
    for table in _reflect(connection).sorted_tables:
        if table.name == "alembic_version":
            continue
        generated = _generated_key(table)
        made: list[Row] = []
        for place, every_column in enumerate((True, False)):
            row: Row = {}
            for constraint in table.foreign_key_constraints:
                parents = rows.get(constraint.referred_table.name, [])
                local = list(constraint.columns)
                if not every_column and all(c.nullable for c in local):
                    continue
                if not parents:
                    raise AssertionError(
                        f"{table.name} refers to {constraint.referred_table.name}, filled later"
                    )
                parent = parents[place % len(parents)]
                for element in constraint.elements:
                    row[element.parent.name] = parent[element.column.name]
            for column in table.columns:
                if column.name in row or column is generated:
                    continue
                if every_column or not column.nullable:
                    row[column.name] = _sample(column, next(counter), dialect)
            result = connection.execute(table.insert().values(row))
            if generated is not None:
                assert result.inserted_primary_key is not None
                row[generated.name] = result.inserted_primary_key[0]
            made.append(row)
        rows[table.name] = made
    return rows


def _read(names: set[str]) -> Callable[[Connection], dict[str, list[Row]]]:
    def read(connection: Connection) -> dict[str, list[Row]]:
        reflected = _reflect(connection)
        return {
            name: [dict(row._mapping) for row in connection.execute(sa.select(table))]
            for name, table in reflected.tables.items()
            if name in names
        }

    return read


def _plain(value: Any) -> Any:
    """``value`` as either backend gives it back: a UUID as hex, a datetime aware in UTC."""
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    return value


@pytest.mark.parametrize("revision", _chain(), ids=lambda revision: f"from-{revision}")
async def test_upgrade_keeps_the_rows_of_an_earlier_revision(
    empty_database_url: str, revision: str
) -> None:
    await upgrade_async(empty_database_url, revision=revision)
    engine = create_async_engine(empty_database_url)
    try:
        async with engine.begin() as connection:
            written = await connection.run_sync(_fill)
    finally:
        await engine.dispose()

    await upgrade_async(empty_database_url)

    assert await _inspect(empty_database_url, _revision) == head_revision()
    kept = await _inspect(empty_database_url, _read(set(written)))
    assert {name: len(rows) for name, rows in kept.items()} == {
        name: len(written[name]) for name in kept
    }, "an upgrade lost or added rows"
    for name, rows in kept.items():
        before = [{c: _plain(v) for c, v in row.items()} for row in written[name]]
        after = [{c: _plain(v) for c, v in row.items()} for row in rows]
        for old in before:
            columns = [c for c in old if c in after[0] and (name, c) not in REWRITTEN]
            wanted = {c: old[c] for c in columns}
            found = [{c: new[c] for c in columns} for new in after]
            assert wanted in found, f"{name}: no row after the upgrade holds {wanted}; {found}"
    differences = await _inspect(empty_database_url, _schema_differences)
    assert differences == [], "\n".join(repr(d) for d in differences)
