"""Hub processes appending to the access log at the same time make one chain (PostgreSQL: the
lock lives in the database, not in a process). Three interpreters start: about 3 s of CPU,
the reason this test is slower than most."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from hub.access.chain import verify_chain
from hub.db import Database
from tests.access.test_chain import entries
from tests.messages.world import World

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.postgres
async def test_three_processes_writing_at_once_make_one_chain(
    database: Database, world: World
) -> None:
    if database.dialect != "postgresql":
        pytest.skip("SQLite's processes share its one write lock; the point is PostgreSQL's")
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.access.writer",
            database.url,
            str(world.anna.id),
            "10",
            cwd=ROOT,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(3)
    ]
    for process in processes:
        _, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()

    assert [e.seq for e in await entries(database)] == list(range(1, 31))
    report = await verify_chain(database)
    assert report.ok and report.checked == 30
