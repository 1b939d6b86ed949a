"""Live events survive disconnects: chat lines posted while clients lose the socket at random
and resume from their last position reach every client exactly once, in order — over real
websockets against uvicorn, on SQLite and PostgreSQL, and across two hub processes' worth of
apps through Redis. A position that cannot be resumed (too old, in the future, malformed) is
answered with ``reload``, never a silent gap or a server error.

The long run (1,000 lines, 0-120 s away) is bench/live_reconnect.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col

from hub.app import create_app
from hub.config import Settings
from hub.db import Database
from hub.models import Case, CaseEvent
from tests.conftest import REDIS_UP, REDIS_URL
from tests.live.churn import Endpoint, Outcome, Scenario, run
from tests.live.harness import (
    BASE_URL,
    LiveClient,
    LiveServer,
    clients,
    http,
    live_client,
    live_server,
    make_world,
    settings,
    start_server,
)

__all__ = ["clients", "http", "live_server", "settings"]

# 120 lines over three seconds or more; each client drops its socket after 0-1 s and stays
# away 0-2 s, so it misses a good part of the lines several times over. (More lines cost CI
# time, not coverage: bench/live_reconnect.py posts 1,000 over minutes.)
SCENARIO = Scenario(messages=120, online=(0.0, 1.0), offline=(0.0, 2.0), pace=0.02)


def endpoint(server: LiveServer) -> Endpoint:
    return Endpoint(server.http_url, server.ws_url)


def assert_exactly_once_in_order(outcome: Outcome) -> None:
    assert outcome.faults() == {}
    assert outcome.disconnects >= 2 * len(outcome.clients), "the clients hardly disconnected"
    for client in outcome.clients:
        assert client.received == outcome.expected[client.name]
    citizen, staff = outcome.clients[0], outcome.clients[-1]
    # Staff-only notes are in the staff's stream and never in the citizen's.
    assert set(outcome.expected[staff.name]) > set(outcome.expected[citizen.name])


async def test_clients_dropping_the_socket_at_random_get_every_event_once_in_order(
    live_server: LiveServer, database: Database
) -> None:
    world = await make_world(database)
    outcome = await run(
        [endpoint(live_server)],
        database,
        case_id=world.case_id,
        citizen_token=world.citizen_token,
        staff_token=world.staff_token,
        scenario=SCENARIO,
        citizens=2,
        staff=1,
    )
    assert_exactly_once_in_order(outcome)


@pytest.fixture
async def two_apps_through_redis(
    tmp_path: Path, database: Database
) -> AsyncIterator[list[LiveServer]]:
    """Two hub apps (as two processes would be) on one database, fanning out through Redis."""
    if not REDIS_UP:
        if os.environ.get("CI") == "true":
            raise RuntimeError("CI=true but Redis is not reachable on 127.0.0.1:6379")
        pytest.skip("Redis not reachable")
    servers: list[tuple[LiveServer, asyncio.Task[None]]] = []
    try:
        for name in ("a", "b"):
            settings = Settings(
                environment="test",
                data_dir=tmp_path / name,
                run_worker=False,
                base_url=BASE_URL,
                redis_url=REDIS_URL,
            )
            app = create_app(settings, database=database)
            uvicorn_server, task, port = await start_server(app)
            servers.append((LiveServer(app, "127.0.0.1", port, uvicorn_server), task))
        yield [live for live, _ in servers]
    finally:
        for live, _ in servers:
            live.server.should_exit = True
        for _, task in servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)


@pytest.mark.redis
@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_the_same_across_two_apps_fanning_out_through_redis(
    two_apps_through_redis: list[LiveServer], database: Database
) -> None:
    """Lines are posted on one app; each reconnect picks either app at random."""
    world = await make_world(database)
    outcome = await run(
        [endpoint(server) for server in two_apps_through_redis],
        database,
        case_id=world.case_id,
        citizen_token=world.citizen_token,
        staff_token=world.staff_token,
        scenario=SCENARIO,
        citizens=2,
        staff=1,
    )
    assert_exactly_once_in_order(outcome)


# --- positions that cannot be resumed --------------------------------------------------------


async def grow_log(database: Database, case_id: Any, events: int) -> int:
    """Append ``events`` system events to the case's log directly; the new last_seq."""
    async with database.session() as session:
        case = await session.get(Case, case_id)
        assert case is not None
        start = case.last_seq
        session.add_all(
            CaseEvent(
                case_id=case_id,
                seq=start + n,
                kind="status_changed",
                actor_kind="system",
                payload={},
            )
            for n in range(1, events + 1)
        )
        await session.exec(
            update(Case).where(col(Case.id) == case_id).values(last_seq=start + events)
        )
    return start + events


async def assert_reload_then_usable(
    client: LiveClient, case_id: str, after: Any, reason: str, last_seq: int
) -> None:
    """``reload`` with the reason and the case's last_seq; the case is not followed, and the
    socket stays open and answers."""
    await client.send(type="follow", case_id=case_id, after=after)
    answer = await client.recv()
    assert answer == {
        "type": "reload",
        "case_id": case_id,
        "reason": reason,
        "last_seq": last_seq,
    }, f"after={after!r}"
    await client.send(type="ping")
    assert await client.recv() == {"type": "pong"}


async def test_a_position_too_old_is_answered_with_reload(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, clients: list[LiveClient]
) -> None:
    world = await make_world(database)
    last = await grow_log(database, world.case_id, 1002)
    client = await live_client(live_server, http, world.citizen_token)
    clients.append(client)
    case_id = str(world.case_id)
    for after in (0, 1, last - 1001):  # more than the replay window (1,000) behind
        await assert_reload_then_usable(client, case_id, after, "too_old", last)
    # Reloading as the protocol says (REST, then follow from where it ends) leaves no gap.
    seqs: list[int] = []
    position = 0
    while True:
        page = (
            await http.get(
                f"/api/cases/{case_id}/events",
                params={"after": position, "limit": 500},
                headers={"Authorization": f"Bearer {world.citizen_token}"},
            )
        ).json()
        seqs += [event["seq"] for event in page["events"]]
        position = page["last_seq"]
        if not page["more"]:
            break
    assert seqs == list(range(1, last + 1))
    followed = await client.follow(case_id, after=position)
    assert followed["last_seq"] == last
    assert await client.quiet(0.3, ignore=("presence",)) == []


async def test_a_position_in_the_future_is_answered_with_reload(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, clients: list[LiveClient]
) -> None:
    world = await make_world(database)
    last = await grow_log(database, world.case_id, 3)
    client = await live_client(live_server, http, world.citizen_token)
    clients.append(client)
    # One past the end (a client that kept the number of a rolled-back write, say), another
    # case's number, and one beyond any integer column.
    for after in (last + 1, last + 1000, 2**63, 10**400):
        await assert_reload_then_usable(client, str(world.case_id), after, "future", last)


# Numbers as text, negative numbers, fractions, and what JSON allows beyond numbers; NaN and
# Infinity are not JSON, but Python's parser (the server's) reads them.
MALFORMED = ["12", "", -1, -(2**70), 1.5, 1e308, float("nan"), float("inf"), None, True, False]
MALFORMED += [[3], {"seq": 3}]


async def test_a_malformed_position_is_answered_with_reload(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, clients: list[LiveClient]
) -> None:
    world = await make_world(database)
    client = await live_client(live_server, http, world.citizen_token)
    clients.append(client)
    async with database.session() as session:
        case = await session.get(Case, world.case_id)
        assert case is not None
        last = case.last_seq
    for after in MALFORMED:
        await assert_reload_then_usable(client, str(world.case_id), after, "malformed", last)


async def test_a_follow_without_a_position_is_answered_with_reload(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, clients: list[LiveClient]
) -> None:
    world = await make_world(database)
    client = await live_client(live_server, http, world.citizen_token)
    clients.append(client)
    await client.send(type="follow", case_id=str(world.case_id))
    reload = await client.expect("reload")
    assert reload["reason"] == "malformed"
    # A following that was answered with reload takes nothing in: a later line is not sent.
    await client.send(type="message", case_id=str(world.case_id), body="Hallo", ref="m1")
    await client.expect("ack", ref="m1")
    assert all(frame["type"] != "event" for frame in await client.quiet(0.3))
