"""``hub notices push`` as a user runs it: a progress bar and a summary, the rejected rows in a
file, and a push killed with SIGKILL that ``hub notices resume`` finishes without sending any
row twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import col, func, select

from hub.db import Database
from hub.migrations import upgrade_async
from hub.models import Notice, NoticeJob, OutboxItem, Party
from tests.builders import make_party
from tests.notices.conftest import PERSONALISATION, World, build_world, consent

HUB = Path(sys.executable).parent / "hub"


@pytest.fixture
async def migrated(database: Database, tmp_path: Path) -> AsyncIterator[Database]:
    """The test's database, made by the migrations on SQLite (as the command expects of the
    embedded database), as it is on PostgreSQL."""
    if database.dialect != "sqlite":
        yield database
        return
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    await upgrade_async(url)
    own = Database(url)
    yield own
    await own.dispose()


async def people(database: Database, count: int) -> tuple[World, list[Party]]:
    async with database.session() as session:
        world = await build_world(session)
        made = []
        for number in range(count):
            party = await make_party(
                session, email=f"push{number}@example.nl", preferred_channel="email"
            )
            await consent(session, party, world.topic, True)
            made.append(party)
    return world, made


def write_file(path: Path, parties: list[Party], *, bad: int = 0, each: int = 1) -> Path:
    """One notice a party (``each`` for every party, on different days), then ``bad`` rows
    for nobody."""
    with path.open("w") as out:
        for day in range(each):
            for party in parties:
                row = {
                    "bsn": party.bsn,
                    "topic": "allowances",
                    "template": "rent",
                    "personalisation": {**PERSONALISATION, "start": f"{day + 1} mei"},
                }
                out.write(json.dumps(row) + "\n")
        for _ in range(bad):
            out.write('{"bsn": "111222333", "topic": "allowances", "template": "rent"}\n')
    return path


def environment(database: Database, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "HUB_DATABASE_URL": database.url,
        "HUB_DATA_DIR": str(tmp_path),
        "HUB_ENVIRONMENT": "test",
        "COLUMNS": "120",
        **extra,
    }


async def test_push_shows_progress_and_a_summary_and_writes_the_rejected_rows(
    migrated: Database, tmp_path: Path
) -> None:
    _, parties = await people(migrated, 5)
    source = write_file(tmp_path / "rent.ndjson", parties, bad=2)
    result = await asyncio.to_thread(
        subprocess.run,
        [str(HUB), "notices", "push", str(source), "--agency", "toeslagen"],
        env=environment(migrated, tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "rent.ndjson" in result.stdout and "7 rows" in result.stdout  # the progress bar
    assert ": done." in result.stdout
    summary = result.stdout.splitlines()[-4:]
    assert summary[0].split() == [
        "rows",
        "read",
        "accepted",
        "not",
        "sent",
        "duplicates",
        "rejected",
    ]
    assert summary[2].split() == ["7", "5", "0", "0", "2"]
    reports = await asyncio.to_thread(lambda: list(tmp_path.glob("notice-job-*-rejected.csv")))
    assert summary[3] == f"The rejected rows and why: {reports[0].name}"
    text = await asyncio.to_thread(reports[0].read_text)
    assert text.count("No party is known by this identifier.") == 2


async def test_bad_arguments_end_in_one_clear_line(migrated: Database, tmp_path: Path) -> None:
    await people(migrated, 1)
    source = write_file(tmp_path / "rent.txt", [])
    cases = [
        ([str(source), "--agency", "toeslagen"], "give --format ndjson or csv"),
        ([str(tmp_path / "none.csv"), "--agency", "toeslagen"], "there is no file"),
    ]
    for arguments, message in cases:
        result = await asyncio.to_thread(
            subprocess.run,
            [str(HUB), "notices", "push", *arguments],
            env=environment(migrated, tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("Error: ")
        assert message in result.stderr


async def test_a_killed_push_is_resumed_and_nothing_is_sent_twice(
    migrated: Database, tmp_path: Path
) -> None:
    _, parties = await people(migrated, 200)
    # 4,000 rows: 20 notices for each party, of which the daily cap lets 3 go.
    source = write_file(tmp_path / "many.ndjson", parties, each=20)
    env = environment(migrated, tmp_path, HUB_NOTICE_JOB_CLAIM_SECONDS="2")
    push = await asyncio.create_subprocess_exec(
        str(HUB),
        *("notices", "push", str(source), "--agency", "toeslagen", "--batch-rows", "10"),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        async with migrated.session() as session:
            job = (await session.exec(select(NoticeJob))).first()
        if job is not None and job.next_row >= 100:
            break
        await asyncio.sleep(0.01)
    push.send_signal(signal.SIGKILL)
    await push.wait()
    async with migrated.session() as session:
        stopped = (await session.exec(select(NoticeJob))).one()
    assert stopped.status == "running"
    assert 100 <= stopped.next_row < 4000, "the kill should land in the middle of the job"

    def hub(*arguments: str) -> subprocess.CompletedProcess[str]:
        command = [str(HUB), *arguments]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    early = await asyncio.to_thread(hub, "notices", "resume", str(stopped.id))
    if early.returncode != 0:  # still held by the dead process's claim: said plainly
        assert "being run by another process" in early.stderr
        await asyncio.sleep(2.1)
        later = await asyncio.to_thread(hub, "notices", "resume", str(stopped.id))
        assert later.returncode == 0, later.stderr

    async with migrated.session() as session:
        done = (await session.exec(select(NoticeJob))).one()
        per_notice = (
            await session.exec(
                select(func.count()).select_from(OutboxItem).group_by(col(OutboxItem.notice_id))
            )
        ).all()
        notices = (await session.exec(select(func.count()).select_from(Notice))).one()
    assert (done.status, done.next_row, done.duplicates) == ("done", 4000, 0)
    assert (done.accepted, done.not_sent) == (600, 3400)
    assert notices == 4000
    assert list(per_notice) == [1] * 600
