"""A real hub behind uvicorn on a free port, and a small client for its live socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlmodel.ext.asyncio.session import AsyncSession
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin, Subprotocol

from hub.app import create_app
from hub.config import Settings
from hub.db import Database
from hub.models import StaffMember
from tests.builders import bearer, make_agency, make_case, make_party, token_for

BASE_URL = "https://hub.example.nl"
PORTAL_ORIGIN = "https://portal.example.nl"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path,
        run_worker=False,
        base_url=BASE_URL,
        allowed_origins=[PORTAL_ORIGIN],
    )


@dataclass
class LiveServer:
    app: FastAPI
    host: str
    port: int
    server: uvicorn.Server

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/api/live"


async def start_server(app: FastAPI) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="on", log_level="warning", ws="auto"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    assert server.started, "uvicorn did not start"
    return server, task, port


@pytest.fixture
async def live_server(settings: Settings, database: Database) -> AsyncIterator[LiveServer]:
    app = create_app(settings, database=database)
    server, task, port = await start_server(app)
    yield LiveServer(app, "127.0.0.1", port, server)
    server.should_exit = True
    await asyncio.wait_for(task, 10)


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.http_url, timeout=10) as client:
        yield client


class LiveClient:
    """A websocket client speaking the live protocol; collects frames as they come."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []

    async def send(self, **frame: Any) -> None:
        await self.ws.send(json.dumps(frame, default=str))

    async def recv(self, within: float = 15.0) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), within))
        self.seen.append(frame)
        return frame

    async def expect(
        self,
        type_: str,
        within: float = 15.0,  # generous: a busy CI machine, not a slow hub
        where: Callable[[dict[str, Any]], bool] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """The next frame of ``type_`` with ``fields`` (other frames are kept in ``seen``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"no {type_} {fields} frame; seen: {self.seen[-10:]}")
            try:
                frame = await self.recv(left)
            except TimeoutError:
                raise AssertionError(
                    f"no {type_} {fields} frame; seen: {self.seen[-10:]}"
                ) from None
            if frame["type"] != type_:
                continue
            if all(frame.get(k) == v for k, v in fields.items()) and (
                where is None or where(frame)
            ):
                return frame

    async def event(self, kind: str, within: float = 5.0, **payload: Any) -> dict[str, Any]:
        return await self.expect(
            "event",
            within,
            where=lambda f: (
                f["kind"] == kind and all(f["payload"].get(k) == v for k, v in payload.items())
            ),
        )

    async def quiet(
        self, seconds: float = 0.5, ignore: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        """Frames that arrive within ``seconds`` (apart from ``ignore``d types)."""
        got: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            try:
                frame = await self.recv(left)
            except TimeoutError:
                break
            if frame["type"] not in ignore:
                got.append(frame)
        return got

    async def follow(self, case_id: uuid.UUID | str, after: Any = 0) -> dict[str, Any]:
        await self.send(type="follow", case_id=str(case_id), after=after)
        return await self.expect("followed", case_id=str(case_id))

    async def closed_with(self, within: float = 5.0) -> int:
        """Read until the server closes the socket; the close code."""
        try:
            while True:
                await self.recv(within)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None, "closed without a close frame"
            return closed.rcvd.code

    async def close(self) -> None:
        await self.ws.close()


async def ticket_for(http: httpx.AsyncClient, token: str) -> str:
    response = await http.post("/api/live/tickets", headers=bearer(token))
    assert response.status_code == 201, response.text
    ticket: str = response.json()["ticket"]
    return ticket


def open_socket(
    server: LiveServer,
    *,
    ticket: str | None = None,
    origin: str | None = None,
    path: str = "/api/live",
) -> Any:
    """``websockets`` connect(): the ticket (if given) in the subprotocol header."""
    protocols = (
        [Subprotocol("hub.live.v1"), Subprotocol(f"hub.ticket.{ticket}")] if ticket else None
    )
    return connect(
        f"ws://{server.host}:{server.port}{path}",
        subprotocols=protocols,
        origin=Origin(origin) if origin else None,
        open_timeout=5,
    )


async def live_client(
    server: LiveServer, http: httpx.AsyncClient, token: str, *, via: str = "frame"
) -> LiveClient:
    """A connected, authenticated client (``ready`` read)."""
    ticket = await ticket_for(http, token)
    if via == "subprotocol":
        ws = await open_socket(server, ticket=ticket)
        client = LiveClient(ws)
    else:
        ws = await open_socket(server)
        client = LiveClient(ws)
        await client.send(type="auth", ticket=ticket)
    await client.expect("ready")
    return client


@pytest.fixture
async def clients() -> AsyncIterator[list[LiveClient]]:
    """Clients appended here are closed after the test."""
    opened: list[LiveClient] = []
    yield opened
    for client in opened:
        with contextlib.suppress(Exception):  # already closed by the server
            await client.close()


@dataclass
class World:
    """An agency with a member of staff, a citizen with a verified email address and an open
    question case, and their session tokens."""

    agency_id: str
    staff_id: uuid.UUID
    staff_token: str
    party_id: uuid.UUID
    citizen_token: str
    case_id: uuid.UUID


async def quick_staff(session: AsyncSession, agency_id: str, name: str) -> StaffMember:
    """A member of staff without a password (tests log them in with ``token_for``): hashing
    one costs a third of a second."""
    staff = StaffMember(
        agency_id=agency_id, email=f"{uuid.uuid4().hex}@{agency_id}.test", display_name=name
    )
    session.add(staff)
    await session.flush()
    return staff


async def make_world(database: Database, *, opening_hours: dict[str, Any] | None = None) -> World:
    async with database.session() as session:
        agency = await make_agency(session, "toeslagen", activities=("vragen-beantwoorden",))
        agency.name = "Dienst Toeslagen"
        agency.opening_hours = opening_hours or {}
        session.add(agency)
        staff = await quick_staff(session, "toeslagen", "Sanne de Wit")
        party = await make_party(session, "Jan Jansen", email="jan@example.nl")
        case = await make_case(session, party)
    return World(
        agency_id="toeslagen",
        staff_id=staff.id,
        staff_token=await token_for(database, "staff", staff.id),
        party_id=party.id,
        citizen_token=await token_for(database, "citizen", party.id),
        case_id=case.id,
    )
