"""scripts/backup.sh and scripts/restore.sh on real PostgreSQL databases: a citizen's case and
her uploaded document come back after a restore into an empty database, and she downloads
the same bytes; a damaged backup, a non-empty target and a missing file are refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from hub.app import create_app
from hub.config import Settings
from hub.db import Database, create_all
from tests.builders import bearer
from tests.conftest import POSTGRES_ADMIN_URL, POSTGRES_UP
from tests.documents.test_routes import a_pdf, upload
from tests.messages.world import make_world

ROOT = Path(__file__).resolve().parents[2]
BASH = shutil.which("bash") or "/bin/bash"
BACKUP = ROOT / "scripts" / "backup.sh"
RESTORE = ROOT / "scripts" / "restore.sh"

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not POSTGRES_UP, reason="PostgreSQL not reachable"),
    pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump not installed"),
]


async def admin(statement: str) -> None:
    engine = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(statement))
    await engine.dispose()


async def new_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    name = f"hub_restore_{uuid.uuid4().hex[:10]}"
    await admin(f'CREATE DATABASE "{name}"')
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def source_url() -> AsyncIterator[str]:
    """The database of the hub that is backed up: the hub's tables, no rows."""
    async for url in new_database():
        database = Database(url)
        await create_all(database)
        await database.dispose()
        yield url


@pytest.fixture
async def target_url() -> AsyncIterator[str]:
    """The empty database a backup is restored into."""
    async for url in new_database():
        yield url


def run(
    script: Path, argument: Path, url: str, documents: Path
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "PG"))}
    environment |= {"HUB_DATABASE_URL": url, "HUB_DOCUMENTS_DIR": str(documents)}
    return subprocess.run(
        [BASH, str(script), str(argument)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )


def hub_settings(tmp_path: Path, documents: Path) -> Settings:
    return Settings(
        environment="test", data_dir=tmp_path, documents_dir=documents, run_worker=False
    )


async def hub_client(settings: Settings, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, database=database)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
            yield client


async def test_a_restored_hub_hands_out_the_documents_of_the_backup_and_nothing_later(
    source_url: str, target_url: str, tmp_path: Path
) -> None:
    source_documents, target_documents = tmp_path / "source-docs", tmp_path / "target-docs"
    backup = tmp_path / "backup"
    source = Database(source_url)
    world = await make_world(source)
    payslip, later = a_pdf("Loonstrook mei 2026"), a_pdf("Loonstrook juni 2026")
    async for client in hub_client(hub_settings(tmp_path, source_documents), source):
        added = await upload(client, world.question, world.anna_token, payslip)
        assert added.status_code == 201, added.text
        # A file the hub was writing when a process died belongs to no row.
        (source_documents / "ab").mkdir(exist_ok=True)
        (source_documents / "ab" / "tmp_partial").write_bytes(b"half a file")

        made = run(BACKUP, backup, source_url, source_documents)
        assert made.returncode == 0, made.stderr
        assert "and 1 stored files into" in made.stdout
        assert sorted(p.name for p in backup.iterdir()) == [
            "SHA256SUMS",
            "database.dump",
            "documents.tar",
        ]
        after = await upload(client, world.question, world.anna_token, later)
        assert after.status_code == 201
    await source.dispose()

    restored = run(RESTORE, backup, target_url, target_documents)
    assert restored.returncode == 0, restored.stderr
    assert "all 1 documents have their files" in restored.stdout
    assert not (target_documents / "ab" / "tmp_partial").exists()

    target = Database(target_url)
    async for client in hub_client(hub_settings(tmp_path, target_documents), target):
        # Anna's session was in the backup too: she is still logged in.
        headers = bearer(world.anna_token)
        listed = await client.get(f"/api/cases/{world.question.id}/documents", headers=headers)
        assert [d["id"] for d in listed.json()] == [added.json()["id"]]
        download = await client.get(f"/api/documents/{added.json()['id']}", headers=headers)
        assert download.status_code == 200 and download.content == payslip
        gone = await client.get(f"/api/documents/{after.json()['id']}", headers=headers)
        assert gone.status_code == 404
    await target.dispose()


async def test_restore_refuses_a_database_that_is_not_empty_and_a_damaged_backup(
    source_url: str, target_url: str, tmp_path: Path
) -> None:
    backup = tmp_path / "backup"
    assert run(BACKUP, backup, source_url, tmp_path / "docs").returncode == 0
    again = run(BACKUP, backup, source_url, tmp_path / "docs")
    assert again.returncode == 2 and "is not empty" in again.stderr

    into_used = run(RESTORE, backup, source_url, tmp_path / "restored")
    assert into_used.returncode == 2
    assert (
        "already has" in into_used.stderr and "restore into an empty database" in into_used.stderr
    )

    with (backup / "database.dump").open("r+b") as dump:
        dump.seek(100)
        dump.write(b"\x00\x01\x02")
    damaged = run(RESTORE, backup, target_url, tmp_path / "restored")
    assert damaged.returncode == 1 and "the backup is damaged" in damaged.stderr
    assert not (tmp_path / "restored").exists()


async def test_restore_names_a_document_whose_file_the_backup_lacks(
    source_url: str, target_url: str, tmp_path: Path
) -> None:
    documents = tmp_path / "docs"
    source = Database(source_url)
    world = await make_world(source)
    async for client in hub_client(hub_settings(tmp_path, documents), source):
        added = await upload(client, world.question, world.anna_token, a_pdf())
        assert added.status_code == 201
    await source.dispose()
    for stored in [p for p in documents.rglob("*") if p.is_file()]:
        stored.unlink()  # lost from the store before the backup was made

    assert run(BACKUP, tmp_path / "backup", source_url, documents).returncode == 0
    restored = run(RESTORE, tmp_path / "backup", target_url, tmp_path / "restored")
    assert restored.returncode == 1
    assert "Missing file for a document" in restored.stderr
    assert "1 documents have no file" in restored.stderr


def test_the_database_password_stays_off_the_command_line(tmp_path: Path) -> None:
    # pg_dump is replaced by a stand-in that reports what it was given, and then fails.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / "pg_dump"
    stand_in.write_text('#!/bin/sh\necho "args: $*" >&2\necho "env: $PGPASSWORD" >&2\nexit 3\n')
    stand_in.chmod(0o755)
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "PG"))}
    environment |= {
        "PATH": f"{bin_dir}:{environment['PATH']}",
        "HUB_DATABASE_URL": "postgresql+asyncpg://hub:s%40cret@db.example:5433/hub",
    }
    result = subprocess.run(
        [BASH, str(BACKUP), str(tmp_path / "backup")],
        capture_output=True,
        text=True,
        env=environment,
    )
    assert result.returncode == 3
    assert "env: s@cret" in result.stderr
    assert "s@cret" not in result.stderr.split("env:")[0] and "s%40cret" not in result.stderr
