"""Two `hub serve` processes sharing a PostgreSQL database and Redis: a citizen on one and a
member of staff on the other chat both ways over real websockets, and the staff process
knows the citizen is in the chat (presence in Redis)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import select

from hub.db import Database, create_all
from hub.live.protocol import Close
from hub.models import Message
from tests.builders import bearer
from tests.conftest import POSTGRES_ADMIN_URL, POSTGRES_UP, REDIS_UP, REDIS_URL, run_in_thread
from tests.live.harness import LiveClient, LiveServer, live_client, make_world

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

if os.environ.get("CI") == "true" and not (POSTGRES_UP and REDIS_UP):
    raise RuntimeError("CI=true but PostgreSQL or Redis is not reachable for the two-process test")
if not (POSTGRES_UP and REDIS_UP):
    pytest.skip("needs PostgreSQL and Redis", allow_module_level=True)

HUB = str(Path(sys.executable).with_name("hub"))


@pytest.fixture
def shared_database_url() -> Iterator[str]:
    """A PostgreSQL database of its own, with the hub's tables, dropped afterwards."""
    name = f"hub_two_processes_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    async def admin(statement: str) -> None:
        engine = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        async with engine.connect() as connection:
            await connection.execute(text(statement))
        await engine.dispose()

    run_in_thread(admin(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    async def tables() -> None:
        database = Database(url)
        await create_all(database)
        await database.dispose()

    run_in_thread(tables())
    yield url
    run_in_thread(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class HubProcess:
    process: asyncio.subprocess.Process
    port: int
    log: Path

    @property
    def server(self) -> LiveServer:
        return LiveServer(app=None, host="127.0.0.1", port=self.port, server=None)  # type: ignore[arg-type]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def serve(url: str, tmp_path: Path, name: str, *, run_worker: bool) -> HubProcess:
    port = free_port()
    env = {
        **os.environ,
        "HUB_ENVIRONMENT": "test",
        "HUB_DATABASE_URL": url,
        "HUB_REDIS_URL": REDIS_URL,
        "HUB_HOST": "127.0.0.1",
        "HUB_PORT": str(port),
        "HUB_RUN_WORKER": "true" if run_worker else "false",
        "HUB_DATA_DIR": str(tmp_path / name),
        "HUB_BASE_URL": f"http://127.0.0.1:{port}",
    }
    log = tmp_path / f"{name}.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            HUB, "serve", env=env, stdout=output, stderr=asyncio.subprocess.STDOUT
        )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        # A minute: on a busy machine importing the hub alone takes over ten seconds.
        for _ in range(1200):
            if process.returncode is not None:
                raise AssertionError(f"hub {name} stopped:\n{log.read_text()}")
            try:
                await client.get("/api/me")
                return HubProcess(process, port, log)
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    process.kill()
    await process.wait()
    raise AssertionError(f"hub {name} did not start:\n{log.read_text()}")


@pytest.fixture
async def two_hubs(
    shared_database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[HubProcess, HubProcess]]:
    first, second = await asyncio.gather(
        serve(shared_database_url, tmp_path, "a", run_worker=True),
        serve(shared_database_url, tmp_path, "b", run_worker=False),
    )
    yield first, second
    for hub in (first, second):
        if hub.process.returncode is None:
            hub.process.send_signal(signal.SIGTERM)
    for hub in (first, second):
        try:
            await asyncio.wait_for(hub.process.wait(), 10)
        except TimeoutError:
            hub.process.kill()
            await hub.process.wait()


async def test_a_citizen_on_one_process_chats_with_staff_on_another(
    two_hubs: tuple[HubProcess, HubProcess], shared_database_url: str
) -> None:
    hub_a, hub_b = two_hubs
    database = Database(shared_database_url)
    try:
        world = await make_world(database)
        async with (
            httpx.AsyncClient(base_url=hub_a.server.http_url) as http_a,
            httpx.AsyncClient(base_url=hub_b.server.http_url) as http_b,
        ):
            # The citizen, on process A, starts the chat and asks for replies by email
            # once they have left.
            started = await http_a.post(
                "/api/chats",
                json={"case_id": str(world.case_id), "text": "Is daar iemand?"},
                headers=bearer(world.citizen_token),
            )
            assert started.status_code == 201, started.text
            chat = started.json()["chat"]
            chose = await http_a.put(
                f"/api/chats/{chat['id']}/reply-channel",
                json={"channel": "email"},
                headers=bearer(world.citizen_token),
            )
            assert chose.status_code == 200, chose.text
            citizen = await live_client(hub_a.server, http_a, world.citizen_token)
            await citizen.follow(world.case_id, after=started.json()["message"]["seq"])

            # Staff, on process B, find it in the queue and pick it up.
            queue = (await http_b.get("/api/chats/queue", headers=bearer(world.staff_token))).json()
            assert [entry["conversation_id"] for entry in queue] == [chat["id"]]
            staff = await live_client(hub_b.server, http_b, world.staff_token, via="subprotocol")
            followed = await staff.follow(world.case_id, after=0)
            assert followed["citizen_online"] is True  # known on B through Redis
            picked = await http_b.post(
                f"/api/chats/{chat['id']}/pickup", headers=bearer(world.staff_token)
            )
            assert picked.status_code == 200, picked.text
            told = await citizen.event("chat_picked_up")
            assert told["payload"]["staff_name"] == "Sanne de Wit"

            # Both ways over the sockets, across the processes.
            await staff.send(
                type="message", case_id=str(world.case_id), body="Goedemiddag!", ref="s1"
            )
            ack = await staff.expect("ack", ref="s1")
            line = await citizen.event("message", body="Goedemiddag!")
            assert line["seq"] == ack["seq"]
            await citizen.send(type="typing", case_id=str(world.case_id), active=True)
            assert (await staff.expect("typing"))["who"]["name"] == "Jan Jansen"
            await citizen.send(
                type="message", case_id=str(world.case_id), body="Mijn toeslag", ref="c1"
            )
            await citizen.expect("ack", ref="c1")
            assert (await staff.event("message", body="Mijn toeslag"))["actor_kind"] == "citizen"
            await staff.send(type="note", case_id=str(world.case_id), body="Alleen voor ons")
            await staff.event("note", text="Alleen voor ons")
            assert all(f.get("kind") != "note" for f in await citizen.quiet(0.5))

            async with database.session() as session:
                reply = (
                    await session.exec(select(Message).where(Message.body == "Goedemiddag!"))
                ).one()
            # B sent it by chat, not by the email the citizen asked for once gone: B knew
            # the citizen was in the chat on A.
            assert reply.channel == "webchat"

            # Process A goes away: its citizen is told to reconnect.
            hub_a.process.send_signal(signal.SIGTERM)
            assert await citizen.closed_with(10) == Close.RECONNECT
            await staff.close()
            assert isinstance(citizen, LiveClient)
    finally:
        await database.dispose()
