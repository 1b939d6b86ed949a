"""/healthz answers whatever happens around the process; /readyz answers 503, saying what is
down, when the database or Redis cannot be reached; the container probe agrees with both."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from channels.email.receiver import start_receiver
from hub.app import create_app
from hub.config import Settings
from hub.db import Database
from hub.health.probe import main as probe
from hub.health.service import check_redis
from tests.conftest import POSTGRES_UP, REDIS_UP, REDIS_URL
from tests.live.harness import free_port, start_server

PROBLEM_JSON = "application/problem+json"


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    return free_port()


async def hub_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
            yield client


@pytest.fixture
async def client_without_redis(
    settings: Settings, database: Database
) -> AsyncIterator[httpx.AsyncClient]:
    async for client in hub_client(create_app(settings, database=database)):
        yield client


async def test_a_hub_that_reaches_its_database_is_alive_and_ready(
    client_without_redis: httpx.AsyncClient,
) -> None:
    alive = await client_without_redis.get("/healthz")
    assert alive.status_code == 200 and alive.json() == {"status": "alive"}
    ready = await client_without_redis.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok"}}


def unreachable_database_url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        # A folder where the database file should be: SQLite cannot open it.
        return f"sqlite+aiosqlite:///{tmp_path}"
    return f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/hub"


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        pytest.param(
            "postgres",
            marks=pytest.mark.skipif(not POSTGRES_UP, reason="PostgreSQL not reachable"),
        ),
    ],
)
async def test_without_its_database_the_hub_is_alive_but_not_ready(
    backend: str, settings: Settings, tmp_path: Path
) -> None:
    database = Database(unreachable_database_url(backend, tmp_path))
    async for client in hub_client(create_app(settings, database=database)):
        # Alive: restarting the process would not bring the database back.
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.headers["content-type"] == PROBLEM_JSON
        assert ready.headers["retry-after"] == "5"
        problem = ready.json()
        assert problem["status"] == 503 and problem["title"] == "Not ready"
        assert problem["detail"] == "This hub process cannot reach the database."
        assert problem["checks"] == {"database": "down"}
        assert problem["instance"] == "/readyz"
    await database.dispose()


@dataclass
class OwnRedis:
    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    """A Redis server of this test's own, which the test may stop."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI") == "true":
            raise RuntimeError("CI=true but redis-server is not installed")
        pytest.skip("redis-server not installed")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = OwnRedis(f"redis://127.0.0.1:{port}/0", process)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield server
    finally:
        server.stop()


async def test_when_redis_goes_down_the_hub_says_it_is_not_ready(
    own_redis: OwnRedis, settings: Settings, database: Database
) -> None:
    app = create_app(settings.model_copy(update={"redis_url": own_redis.url}), database=database)
    async for client in hub_client(app):
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}

        await asyncio.to_thread(own_redis.stop)

        assert (await client.get("/healthz")).status_code == 200
        down = await client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["detail"] == "This hub process cannot reach Redis."
        assert down.json()["checks"] == {"database": "ok", "redis": "down"}


async def test_redis_at_a_closed_port_or_one_that_never_answers_is_down_within_the_limit() -> None:
    assert await check_redis(f"redis://127.0.0.1:{closed_port()}/0") == "down"
    # A server that accepts the connection and then says nothing: the check must not hang.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        started = time.monotonic()
        state = await check_redis(f"redis://127.0.0.1:{silent.getsockname()[1]}/0", seconds=0.5)
        assert state == "down"
        assert time.monotonic() - started < 2


@pytest.mark.skipif(not REDIS_UP, reason="Redis not reachable")
async def test_the_shared_redis_counts_as_up() -> None:
    assert await check_redis(REDIS_URL) == "ok"


# --- the container probe ----------------------------------------------------------------------


def probe_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **values: str) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setenv("HUB_ENVIRONMENT", "test")
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("HUB_REDIS_URL", raising=False)
    for name, value in values.items():
        monkeypatch.setenv(f"HUB_{name.upper()}", value)


async def test_the_serve_probe_asks_the_running_hub(
    settings: Settings,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, task, port = await start_server(create_app(settings, database=database))
    try:
        probe_env(monkeypatch, tmp_path, host="0.0.0.0", port=str(port))  # noqa: S104
        assert await asyncio.to_thread(probe, ["serve"]) == 0
        assert "healthy: hub serve" in capsys.readouterr().out
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    assert await asyncio.to_thread(probe, ["serve"]) == 1
    assert f"127.0.0.1:{port}/healthz did not answer" in capsys.readouterr().err


async def test_the_mail_receiver_probe_waits_for_the_smtp_greeting(
    settings: Settings,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    server = await start_receiver(settings, database, host="127.0.0.1", port=port)
    probe_env(monkeypatch, tmp_path, mail_receiver_port=str(port))
    try:
        assert await asyncio.to_thread(probe, ["mail-receiver"]) == 0
    finally:
        server.close()
        await server.wait_closed()
    assert await asyncio.to_thread(probe, ["mail-receiver"]) == 1
    assert f"no SMTP server at 127.0.0.1:{port}" in capsys.readouterr().err


def test_the_worker_probe_checks_the_database_and_redis_it_works_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probe_env(monkeypatch, tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path}/hub.db")
    assert probe(["worker"]) == 0
    monkeypatch.setenv("HUB_REDIS_URL", f"redis://127.0.0.1:{closed_port()}/0")
    assert probe(["worker"]) == 1
    assert "unhealthy: cannot reach redis" in capsys.readouterr().err
    monkeypatch.setenv("HUB_DATABASE_URL", unreachable_database_url("sqlite", tmp_path))
    assert probe(["worker"]) == 1
    assert "unhealthy: cannot reach database and redis" in capsys.readouterr().err


def test_the_probe_runs_as_a_module_and_refuses_unknown_checks(tmp_path: Path) -> None:
    env = {**os.environ, "HUB_ENVIRONMENT": "test", "HUB_DATA_DIR": str(tmp_path)}
    env["HUB_MAIL_RECEIVER_PORT"] = str(closed_port())
    unknown = subprocess.run(
        [sys.executable, "-m", "hub.health", "dance"], capture_output=True, text=True, env=env
    )
    assert unknown.returncode == 2, unknown.stderr
    assert "usage: python -m hub.health" in unknown.stderr
    down = subprocess.run(
        [sys.executable, "-m", "hub.health", "mail-receiver"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert down.returncode == 1, down.stderr
    assert "unhealthy: no SMTP server" in down.stderr


def test_bad_settings_make_the_probe_fail_without_showing_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probe_env(monkeypatch, tmp_path, environment="production", secret_key="short-secret")
    assert probe(["serve"]) == 1
    err = capsys.readouterr().err
    assert "the settings do not load" in err and "short-secret" not in err
