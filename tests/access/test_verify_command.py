"""`hub access-log verify` on SQLite and PostgreSQL: OK on an intact log, exit code 1 naming
the entry edited or the gap left behind the hub's back; progress on a long walk."""

from __future__ import annotations

import asyncio

import httpx
from typer.testing import CliRunner, Result

from hub.access.chain import verify_chain
from hub.cli import app
from hub.db import Database
from tests.access.tampering import behind_the_back
from tests.access.test_chain import entries, staff_reads
from tests.messages.world import World


async def verify(database: Database, *options: str) -> Result:
    env = {"HUB_DATABASE_URL": database.url, "HUB_ENVIRONMENT": "test"}
    arguments = ["access-log", "verify", *options]
    return await asyncio.to_thread(CliRunner().invoke, app, arguments, env=env)


async def test_an_intact_log_is_reported_ok(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    await staff_reads(client, world, 3)

    result = await verify(database)

    assert result.exit_code == 0, result.output
    head = (await entries(database))[-1].entry_hash
    assert f"3 entries checked, all OK. Last hash: {head}" in result.stdout


async def test_an_entry_edited_behind_the_hubs_back_fails_naming_it(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    await staff_reads(client, world, 3)
    edited = (await entries(database))[1]

    await behind_the_back(database, "UPDATE access_log SET data = 'nothing' WHERE seq = 2")
    result = await verify(database)

    assert result.exit_code == 1
    assert f"broken at entry 2 (id {edited.id})" in result.stderr
    assert "changed after it was written" in result.stderr
    assert "The 1 entries before it are OK" in result.stderr


async def test_an_entry_deleted_from_the_middle_fails_at_the_gap(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    await staff_reads(client, world, 3)

    await behind_the_back(database, "DELETE FROM access_log WHERE seq = 2")
    result = await verify(database)

    assert result.exit_code == 1
    assert "broken at entry 3" in result.stderr and "entry 2 is missing" in result.stderr


async def test_a_long_walk_reports_its_progress(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    await staff_reads(client, world, 5)
    seen: list[tuple[int, int]] = []

    report = await verify_chain(database, batch=2, progress=lambda *p: seen.append(p))
    result = await verify(database, "--batch", "2")

    assert report.ok and report.checked == 5
    assert seen == [(2, 5), (4, 5), (5, 5)]
    assert result.exit_code == 0
    assert result.stderr.splitlines() == ["checked 2 of 5 entries…", "checked 4 of 5 entries…"]
