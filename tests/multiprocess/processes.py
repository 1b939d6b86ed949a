"""The hub in production shape, without containers: a PostgreSQL database of its own, and any
number of `hub serve` and `hub worker` processes sharing it and Redis, each with its own log
file, started the way compose.yaml starts them (settings in HUB_*)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import POSTGRES_ADMIN_URL

HUB = str(Path(sys.executable).with_name("hub"))
STARTUP_SECONDS = 30.0
STOP_SECONDS = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _admin(statement: str) -> None:
    engine = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@asynccontextmanager
async def fresh_database(label: str) -> AsyncIterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards."""
    name = f"hub_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class HubProcess:
    """One running `hub …` command and the file its output goes to."""

    name: str
    process: asyncio.subprocess.Process
    log: Path
    port: int | None = None
    stopped_with: int | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        assert self.port is not None, f"{self.name} serves no HTTP"
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/api/live"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def stop(self) -> int:
        """SIGTERM, as an orchestrator stops a container; killed if it takes too long."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), STOP_SECONDS)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        code = self.process.returncode
        assert code is not None
        self.stopped_with = code
        return code


async def run_hub(
    *arguments: str, env: Mapping[str, str], folder: Path, name: str, port: int | None = None
) -> HubProcess:
    """Start ``hub *arguments`` in ``folder`` (so no stray .env is read), output to a log."""
    log = folder / f"{name}.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            HUB,
            *arguments,
            env=dict(env),
            cwd=folder,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
    return HubProcess(name, process, log, port)


async def serve(env: Mapping[str, str], folder: Path, name: str) -> HubProcess:
    """`hub serve` on a free port, once its /readyz says the database and Redis answer."""
    port = free_port()
    settings = {**env, "HUB_HOST": "127.0.0.1", "HUB_PORT": str(port), "HUB_RUN_WORKER": "false"}
    hub = await run_hub("serve", env=settings, folder=folder, name=name, port=port)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_SECONDS
    async with httpx.AsyncClient(base_url=hub.url, timeout=2) as client:
        while loop.time() < deadline:
            if hub.process.returncode is not None:
                raise AssertionError(f"{name} stopped:\n{hub.output()}")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return hub
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    await hub.stop()
    raise AssertionError(f"{name} was not ready within {STARTUP_SECONDS} s:\n{hub.output()}")


async def worker(env: Mapping[str, str], folder: Path, name: str) -> HubProcess:
    """`hub worker`, once it says it runs (its rounds have begun)."""
    hub = await run_hub("worker", env=env, folder=folder, name=name)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_SECONDS
    while loop.time() < deadline:
        if "Worker running" in hub.output():
            return hub
        if hub.process.returncode is not None:
            raise AssertionError(f"{name} stopped:\n{hub.output()}")
        await asyncio.sleep(0.05)
    await hub.stop()
    raise AssertionError(f"{name} did not start within {STARTUP_SECONDS} s:\n{hub.output()}")
