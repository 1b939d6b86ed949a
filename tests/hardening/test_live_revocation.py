"""Revoking a session or a mandate stops events on an already open socket within a second,
and a resume after it is refused — over real websockets, on SQLite and PostgreSQL.

The sockets are idle when access ends (nothing is being delivered that would be checked on
its way), so what is measured is the socket's own check (``WATCH_SECONDS``, 0.5 s): from the
moment the revocation is committed to the close (4403) or the ``unfollowed`` frame. (A line
posted after a revocation is held back by the check made before every delivery: see
tests/live/test_socket.py.)"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col, select
from websockets.exceptions import ConnectionClosed

from hub.db import Database, utcnow
from hub.live.connection import WATCH_SECONDS, session_checks
from hub.live.protocol import Close
from hub.models import Conversation, LoginSession, Party, StaffMember
from tests.builders import bearer, make_mandate, make_party, token_for
from tests.live.harness import (
    LiveClient,
    LiveServer,
    World,
    clients,
    http,
    live_client,
    live_server,
    make_world,
    open_socket,
    settings,
    ticket_for,
)

__all__ = ["clients", "http", "live_server", "settings"]

WITHIN = 1.0


async def post_line(http: httpx.AsyncClient, world: World, text: str) -> None:
    response = await http.post(
        "/api/chats",
        json={"case_id": str(world.case_id), "text": text},
        headers=bearer(world.citizen_token),
    )
    assert response.status_code == 201, response.text


async def closed_after(client: LiveClient, revoked_at: float) -> tuple[int, float]:
    """The close code, and seconds from ``revoked_at`` until the socket closed."""
    try:
        while True:
            await client.recv(3)
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "closed without a close frame"
        return closed.rcvd.code, time.monotonic() - revoked_at


async def following(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, token: str, world: World
) -> LiveClient:
    """A socket following the case, caught up, with a spare ticket kept for a resume."""
    client = await live_client(live_server, http, token)
    followed = await client.follow(world.case_id, after=0)
    while not client.seen or client.seen[-1].get("seq") != followed["last_seq"]:
        await client.expect("event")
    return client


async def login_of(database: Database, subject_id: uuid.UUID) -> uuid.UUID:
    async with database.session() as session:
        return (
            await session.exec(select(LoginSession.id).where(LoginSession.subject_id == subject_id))
        ).one()


async def revoke_directly(database: Database, subject_id: uuid.UUID) -> None:
    """An administrator's revocation: the session row ended behind the app's back."""
    async with database.session() as session:
        await session.exec(
            update(LoginSession)
            .where(col(LoginSession.subject_id) == subject_id)
            .values(revoked_at=utcnow())
        )


async def deactivate(database: Database, staff_id: uuid.UUID) -> None:
    async with database.session() as session:
        await session.exec(
            update(StaffMember).where(col(StaffMember.id) == staff_id).values(active=False)
        )


@pytest.mark.parametrize("how", ["logout", "administrator", "deactivated"])
async def test_a_revoked_session_closes_an_idle_socket_within_a_second_and_cannot_resume(
    live_server: LiveServer,
    http: httpx.AsyncClient,
    database: Database,
    clients: list[LiveClient],
    how: str,
) -> None:
    world = await make_world(database)
    await post_line(http, world, "Hallo")
    staff = how == "deactivated"
    token = world.staff_token if staff else world.citizen_token
    client = await following(live_server, http, database, token, world)
    clients.append(client)
    spare = await ticket_for(http, token)  # taken before, used after
    revoke: Callable[[], Awaitable[None]]
    if how == "logout":

        async def revoke() -> None:
            response = await http.delete("/api/auth/session", headers=bearer(token))
            assert response.status_code == 204

    elif how == "administrator":

        async def revoke() -> None:
            await revoke_directly(database, world.party_id)

    else:

        async def revoke() -> None:
            await deactivate(database, world.staff_id)

    await revoke()
    revoked_at = time.monotonic()
    code, seconds = await closed_after(client, revoked_at)
    assert code == Close.REVOKED
    assert seconds < WITHIN, f"closed {seconds:.3f} s after the revocation"
    await post_line_as_other(http, database, world, staff)

    # A resume is refused: the ticket taken before no longer opens a socket, and the session
    # gets no new one.
    async with open_socket(live_server) as ws:
        again = LiveClient(ws)
        await again.send(type="auth", ticket=spare)
        assert await again.closed_with() == Close.AUTH_FAILED
    response = await http.post("/api/live/tickets", headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


async def post_line_as_other(
    http: httpx.AsyncClient, database: Database, world: World, staff_revoked: bool
) -> None:
    """A line after the revocation, by whoever may still post (it must not reach the socket)."""
    if staff_revoked:
        await post_line(http, world, "Na de intrekking")
        return
    async with database.session() as session:
        chat = (
            await session.exec(select(Conversation).where(Conversation.case_id == world.case_id))
        ).one()
    response = await http.post(
        f"/api/chats/{chat.id}/messages",
        json={"text": "Na de intrekking"},
        headers=bearer(world.staff_token),
    )
    assert response.status_code == 201, response.text


async def test_a_revoked_mandate_stops_an_idle_follow_within_a_second_and_cannot_resume(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, clients: list[LiveClient]
) -> None:
    world = await make_world(database)
    await post_line(http, world, "Hallo")
    async with database.session() as session:
        helper = await make_party(session, "Els Bewindvoerder")
        party = await session.get(Party, world.party_id)
        assert party is not None
        mandate = await make_mandate(session, representative=helper, party=party)
    helper_token = await token_for(database, "citizen", helper.id)
    client = await following(live_server, http, database, helper_token, world)
    clients.append(client)
    position = client.seen[-1]["seq"]

    response = await http.post(
        f"/api/me/mandates/{mandate.id}/revoke", headers=bearer(world.citizen_token)
    )
    assert response.status_code == 200, response.text
    revoked_at = time.monotonic()
    gone = await client.expect("unfollowed", within=3)
    seconds = time.monotonic() - revoked_at
    assert gone["reason"] == "forbidden"
    assert seconds < WITHIN, f"unfollowed {seconds:.3f} s after the revocation"
    await post_line(http, world, "Na de intrekking")

    # Resuming from the old position is refused as for a case that does not exist, on this
    # socket and on a new one; the representative's own session goes on.
    await client.send(type="follow", case_id=str(world.case_id), after=position)
    assert (await client.expect("error"))["code"] == "not_found"
    fresh = await live_client(live_server, http, helper_token)
    clients.append(fresh)
    await fresh.send(type="follow", case_id=str(world.case_id), after=position)
    assert (await fresh.expect("error"))["code"] == "not_found"
    assert "Na de intrekking" not in json.dumps(fresh.seen)


async def test_idle_sockets_cost_the_process_one_session_query_a_tick(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, clients: list[LiveClient]
) -> None:
    """However many sockets are open, their sessions are asked after together; and one of
    them revoked among many still closes within a second."""
    world = await make_world(database)
    await post_line(http, world, "Hallo")
    others = [await token_for(database, "citizen", world.party_id) for _ in range(11)]
    sockets = [await live_client(live_server, http, token) for token in others]
    clients.extend(sockets)
    for socket in sockets:
        await socket.follow(world.case_id, after=0)
    checks = session_checks(live_server.app.state)
    before = checks.queries
    await asyncio.sleep(5 * WATCH_SECONDS)
    assert checks.queries - before <= 6, f"{checks.queries - before} queries for 5 ticks"

    response = await http.delete("/api/auth/session", headers=bearer(others[3]))
    assert response.status_code == 204
    revoked_at = time.monotonic()
    code, seconds = await closed_after(sockets[3], revoked_at)
    assert (code, seconds < WITHIN) == (Close.REVOKED, True), seconds
    await sockets[4].send(type="ping")
    await sockets[4].expect("pong")
