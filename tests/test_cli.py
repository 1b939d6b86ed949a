"""The ``hub`` command, run as a user would: against a fresh SQLite file per test."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select
from typer.testing import CliRunner, Result

from hub.auth.api_keys import hash_key
from hub.auth.passwords import verify_password
from hub.cli import app
from hub.config import Settings
from hub.db import Database
from hub.models import ApiKey, StaffMember
from journeys.catalog import PACKAGED_CATALOG, load_catalog

REPO = Path(__file__).resolve().parent.parent
BROKEN = REPO / "tests" / "journeys" / "fixtures" / "broken"
HUB = Path(sys.executable).parent / "hub"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/hub.db",
        "HUB_ENVIRONMENT": "development",
    }


@pytest.fixture
def hub(env: dict[str, str]) -> Iterator[Any]:
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, **extra_env: str) -> Result:
        return runner.invoke(app, list(args), env={**env, **extra_env}, input=input)

    yield invoke


def assert_clean_error(result: Result, message: str) -> None:
    """Exit 2 with one line naming the problem, and no traceback."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: ")
    assert message in last
    assert result.output.count("Error: ") == 1


def query(env: dict[str, str], model: Any) -> list[Any]:
    async def run() -> list[Any]:
        database = Database(env["HUB_DATABASE_URL"])
        try:
            async with database.session() as session:
                return list((await session.exec(select(model))).all())
        finally:
            await database.dispose()

    return asyncio.run(run())


# --- journeys --------------------------------------------------------------------------------


def test_journeys_list_shows_every_journey_of_the_catalogue_on_its_axes(hub: Any) -> None:
    result = hub("journeys", "list")

    assert result.exit_code == 0, result.output
    header, _rule, *rows = result.output.splitlines()
    assert header.split() == [
        "id",
        "version",
        "title",
        "context",
        "citizen",
        "context",
        "done",
        "by",
        "service",
        "norm",
    ]
    definitions = load_catalog().all()
    assert len(definitions) == 8
    assert len(rows) == 8
    for definition, row in zip(definitions, rows, strict=True):
        assert row.startswith(definition.id + " ")
        norm = definition.service_norm
        for cell in (
            definition.title.en,
            definition.context,
            definition.citizen_context,
            definition.done_by,
            f"{norm.days} {norm.unit} days",
        ):
            assert cell in row, (cell, row)
    huurtoeslag = next(row for row in rows if row.startswith("huurtoeslag "))
    assert "56 calendar days" in huurtoeslag
    assert "right" in huurtoeslag.split()


def test_journeys_check_passes_the_packaged_catalogue(hub: Any) -> None:
    result = hub("journeys", "check")

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "8 journeys OK"


def test_journeys_check_of_a_named_folder(hub: Any) -> None:
    result = hub("journeys", "check", str(PACKAGED_CATALOG))

    assert result.exit_code == 0, result.output
    assert "8 journeys OK" in result.output


def test_journeys_check_names_file_and_field_of_every_broken_definition(hub: Any) -> None:
    result = hub("journeys", "check", str(BROKEN))

    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if ".yaml: " in line]
    named = {Path(line.split(": ", 1)[0]).name for line in lines}
    assert named == {path.name for path in BROKEN.glob("*.yaml")}
    assert len(named) >= 7
    for line in lines:
        file, field, message = line.split(": ", 2)
        assert Path(file).parent == BROKEN
        assert field and message


@pytest.mark.parametrize(
    ("file", "field"),
    [
        ("bad-context.v1.yaml", "context"),
        ("missing-dutch.v1.yaml", "title.nl"),
        ("unknown-transition.v1.yaml", "stages[received].to"),
    ],
)
def test_journeys_check_points_at_the_field(
    hub: Any, tmp_path: Path, file: str, field: str
) -> None:
    folder = tmp_path / "catalog"
    folder.mkdir()
    shutil.copy(PACKAGED_CATALOG / "huurtoeslag.v1.yaml", folder)
    shutil.copy(BROKEN / file, folder)

    result = hub("journeys", "check", str(folder))

    assert result.exit_code == 1
    assert f"{folder / file}: {field}: " in result.output
    assert "huurtoeslag" not in result.output


def test_journeys_check_of_a_missing_folder(hub: Any, tmp_path: Path) -> None:
    result = hub("journeys", "check", str(tmp_path / "nowhere"))

    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_journeys_list_refuses_a_broken_catalogue_in_one_line(hub: Any) -> None:
    result = hub("journeys", "list", str(BROKEN))

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.startswith("Error: ")
    assert "hub journeys check" in result.output


# --- admin -----------------------------------------------------------------------------------


def test_agency_create_and_list(hub: Any) -> None:
    result = hub("admin", "agency", "create", "gemeente-utrecht", "Gemeente Utrecht")

    assert result.exit_code == 0, result.output
    assert "Created agency gemeente-utrecht (Gemeente Utrecht)." in result.output
    listed = hub("admin", "agency", "list")
    assert "gemeente-utrecht  Gemeente Utrecht" in listed.output


def test_agency_create_refuses_a_duplicate_code(hub: Any) -> None:
    hub("admin", "agency", "create", "uwv", "UWV")

    assert_clean_error(
        hub("admin", "agency", "create", "uwv", "UWV"), "agency 'uwv' already exists"
    )


def test_agency_create_refuses_a_code_that_is_not_a_slug(hub: Any) -> None:
    assert_clean_error(hub("admin", "agency", "create", "Gemeente Utrecht", "X"), "agency code")


def test_team_create_needs_a_known_agency(hub: Any) -> None:
    assert_clean_error(hub("admin", "team", "create", "nope", "Balie"), "no agency 'nope'")
    hub("admin", "agency", "create", "uwv", "UWV")

    result = hub("admin", "team", "create", "uwv", "Balie")

    assert result.exit_code == 0, result.output
    assert "Created team 'Balie'" in result.output
    assert_clean_error(hub("admin", "team", "create", "uwv", "Balie"), "already has a team")


def test_staff_create_asks_the_password_hidden_and_shows_the_totp_secret_once(
    hub: Any, env: dict[str, str]
) -> None:
    hub("admin", "agency", "create", "uwv", "UWV")
    password = "correct horse battery"

    result = hub(
        "admin",
        "staff",
        "create",
        "--agency",
        "uwv",
        "--email",
        "Lotte@UWV.example",
        "--name",
        "Lotte Visser",
        "--role",
        "supervisor",
        "--password",
        input=f"{password}\n{password}\n",
    )

    assert result.exit_code == 0, result.output
    (staff,) = query(env, StaffMember)
    assert staff.email == "lotte@uwv.example"
    assert staff.role == "supervisor"
    assert verify_password(staff.password_hash, password)
    assert password not in result.output
    assert staff.totp_secret in result.output
    assert "otpauth://totp/" in result.output


def test_staff_create_refuses_duplicates_and_bad_input(hub: Any) -> None:
    hub("admin", "agency", "create", "uwv", "UWV")
    base = ["admin", "staff", "create", "--agency", "uwv", "--name", "A"]
    assert hub(*base, "--email", "a@uwv.example").exit_code == 0

    assert_clean_error(hub(*base, "--email", "A@uwv.example"), "already exists")
    assert_clean_error(hub(*base, "--email", "no-address"), "is not an email address")
    assert_clean_error(hub(*base, "--email", "b@uwv.example", "--role", "boss"), "role 'boss'")
    assert_clean_error(
        hub(*base, "--email", "c@uwv.example", "--password", input="short\nshort\n"),
        "a password needs at least 12 characters",
    )
    assert_clean_error(
        hub(
            "admin", "staff", "create", "--agency", "nope", "--email", "d@x.example", "--name", "D"
        ),
        "no agency 'nope'",
    )


def test_activity_create_and_list(hub: Any) -> None:
    hub("admin", "agency", "create", "uwv", "UWV")

    result = hub(
        "admin",
        "activity",
        "create",
        "uwv",
        "uwv-ww",
        "--purpose",
        "WW-aanvragen beoordelen",
        "--legal-ground",
        "Art. 6(1)(e) AVG; WW",
    )

    assert result.exit_code == 0, result.output
    listed = hub("admin", "activity", "list", "uwv")
    assert listed.exit_code == 0
    assert "uwv-ww  WW-aanvragen beoordelen  Art. 6(1)(e) AVG; WW" in listed.output
    assert_clean_error(
        hub(
            "admin",
            "activity",
            "create",
            "uwv",
            "uwv-ww",
            "--purpose",
            "again",
            "--legal-ground",
            "again",
        ),
        "already has a processing activity 'uwv-ww'",
    )
    assert_clean_error(hub("admin", "activity", "list", "nope"), "no agency 'nope'")


def _issued_key(output: str) -> str:
    return next(line.strip() for line in output.splitlines() if line.strip().startswith("hub_"))


def test_key_issue_shows_the_key_once_and_stores_only_its_hash(
    hub: Any, env: dict[str, str]
) -> None:
    hub("admin", "agency", "create", "rdw", "RDW")

    result = hub("admin", "key", "issue", "rdw", "kentekenregister")

    assert result.exit_code == 0, result.output
    raw = _issued_key(result.output)
    (key,) = query(env, ApiKey)
    assert key.key_hash == hash_key(raw)
    listed = hub("admin", "key", "list", "rdw")
    assert str(key.id) in listed.output
    assert key.prefix in listed.output
    assert "active" in listed.output
    assert raw not in listed.output


def test_key_rotate_revokes_the_old_key_and_shows_the_new_one(
    hub: Any, env: dict[str, str]
) -> None:
    hub("admin", "agency", "create", "rdw", "RDW")
    old_raw = _issued_key(hub("admin", "key", "issue", "rdw", "crm").output)
    (old,) = query(env, ApiKey)

    result = hub("admin", "key", "rotate", str(old.id))

    assert result.exit_code == 0, result.output
    new_raw = _issued_key(result.output)
    assert new_raw != old_raw
    keys = {key.key_hash: key for key in query(env, ApiKey)}
    assert keys[hash_key(old_raw)].revoked_at is not None
    assert keys[hash_key(new_raw)].revoked_at is None
    assert keys[hash_key(new_raw)].name == "crm"


def test_key_revoke(hub: Any, env: dict[str, str]) -> None:
    hub("admin", "agency", "create", "rdw", "RDW")
    hub("admin", "key", "issue", "rdw", "crm")
    (key,) = query(env, ApiKey)

    result = hub("admin", "key", "revoke", str(key.id))

    assert result.exit_code == 0, result.output
    (key,) = query(env, ApiKey)
    assert key.revoked_at is not None
    assert "revoked" in hub("admin", "key", "list", "rdw").output


def test_key_commands_refuse_unknown_keys_and_agencies(hub: Any) -> None:
    assert_clean_error(hub("admin", "key", "issue", "nope", "crm"), "no agency 'nope'")
    assert_clean_error(hub("admin", "key", "list", "nope"), "no agency 'nope'")
    unknown = "00000000-0000-4000-8000-000000000000"
    assert_clean_error(hub("admin", "key", "revoke", unknown), "No such API key")
    assert_clean_error(hub("admin", "key", "rotate", unknown), "No such API key")
    result = hub("admin", "key", "revoke", "not-a-uuid")
    assert result.exit_code == 2
    assert "Traceback" not in result.output


# --- settings, migrate, demo -----------------------------------------------------------------


def test_settings_lists_every_setting_with_its_variable_and_description(hub: Any) -> None:
    result = hub("settings")

    assert result.exit_code == 0, result.output
    for name, field in Settings.model_fields.items():
        assert f"HUB_{name.upper()} = " in result.output
        assert field.description
        assert " ".join(field.description.split()[:4]) in result.output
    assert "development-only-secret" not in result.output


def test_a_bad_setting_is_one_line_naming_the_variable(hub: Any) -> None:
    assert_clean_error(hub("settings", HUB_PORT="eighty"), "HUB_PORT: ")


def test_migrate_reports_the_revision(hub: Any, env: dict[str, str]) -> None:
    result = hub("migrate")

    assert result.exit_code == 0, result.output
    assert "is at the newest revision" in result.output
    assert query(env, StaffMember) == []


def test_demo_refuses_outside_development(hub: Any) -> None:
    result = hub("demo", HUB_ENVIRONMENT="production", HUB_SECRET_KEY="s" * 40)

    assert_clean_error(result, "`hub demo` loads logins anyone can read")


def test_demo_loads_once_and_prints_logins_and_keys(hub: Any, env: dict[str, str]) -> None:
    first = hub("demo")

    assert first.exit_code == 0, first.output
    assert "Staff logins" in first.output
    assert "Agency API keys" in first.output
    assert query(env, StaffMember)
    second = hub("demo")
    assert second.exit_code == 0, second.output
    assert "already loaded" in second.output


# --- the installed command -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_installed_hub_command_runs() -> None:
    result = subprocess.run(
        [str(HUB), "--help"], capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr
    for command in ("serve", "migrate", "demo", "journeys", "admin", "settings"):
        assert command in result.stdout


def test_serve_migrates_the_embedded_database_and_answers(tmp_path: Path) -> None:
    port = _free_port()
    environment = {
        **os.environ,
        "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/serve.db",
        "HUB_PORT": str(port),
        "HUB_ENVIRONMENT": "development",
    }
    process = subprocess.Popen(
        [str(HUB), "serve"],
        env=environment,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()[0]
                assert time.monotonic() < deadline, "hub serve did not answer within 30 s"
                time.sleep(0.2)
        assert response.status_code == 200
        assert (tmp_path / "serve.db").is_file()
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert (
        f"Interaction Hub is running at http://127.0.0.1:{port} "
        "(API docs at /docs, development outbox at /dev/outbox)"
    ) in output


def test_worker_once_delivers_what_is_due(hub: Any, env: dict[str, str]) -> None:
    from hub.delivery.service import enqueue
    from hub.models import OutboxItem

    assert hub("migrate").exit_code == 0

    async def add_and_read(add: bool) -> list[str]:
        database = Database(env["HUB_DATABASE_URL"])
        async with database.session() as session:
            if add:
                await enqueue(
                    session, channel="email", recipient="a@example.nl", template="t", body="b"
                )
            statuses = [item.status for item in (await session.exec(select(OutboxItem))).all()]
        await database.dispose()
        return statuses

    assert asyncio.run(add_and_read(True)) == ["pending"]
    result = hub("worker", "--once")
    assert result.exit_code == 0, result.output
    assert "1 timers fired and deliveries attempted" in result.output
    assert asyncio.run(add_and_read(False)) == ["delivered"]
