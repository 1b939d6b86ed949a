"""Clients that lose the live socket at random and resume, while chat lines are posted: the
scenario of tests/hardening/test_live_resume.py (seconds) and bench/live_reconnect.py
(minutes). Each client keeps the highest ``seq`` it received as its position and follows
again from it, as docs/websocket-protocol.md asks; what every client received is then held
against the case's log as its viewer may see it."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from hub.db import Database
from hub.events.service import Audience, events_after


@dataclass(frozen=True)
class Endpoint:
    """One hub process: its HTTP base URL and its live socket's URL."""

    http_url: str
    ws_url: str


@dataclass
class Reconnect:
    """One (re)connection: when it began, the case's ``last_seq`` the server answered with,
    and whether the position had to be reloaded over REST."""

    started: float
    last_seq: int | None = None
    followed_at: float | None = None
    reloaded: bool = False


@dataclass
class ChurningClient:
    name: str
    token: str
    audiences: tuple[Audience, ...]
    received: list[int] = field(default_factory=list)
    arrived: dict[int, float] = field(default_factory=dict)
    reconnects: list[Reconnect] = field(default_factory=list)
    disconnects: int = 0
    position: int = 0


@dataclass(frozen=True)
class Scenario:
    messages: int
    # How long a client stays connected, and away, between two disconnects (seconds).
    online: tuple[float, float]
    offline: tuple[float, float]
    # The pause between two posted lines (seconds).
    pace: float
    seed: int = 8


@dataclass
class Outcome:
    """Per client: events expected and received, and what went wrong (all zero when right)."""

    clients: list[ChurningClient]
    expected: dict[str, list[int]]
    resume_ms: list[float]
    posted: int
    seconds: float

    def duplicates(self, client: ChurningClient) -> int:
        return sum(n - 1 for n in Counter(client.received).values())

    def gaps(self, client: ChurningClient) -> int:
        return len(set(self.expected[client.name]) - set(client.received))

    def unexpected(self, client: ChurningClient) -> int:
        return len(set(client.received) - set(self.expected[client.name]))

    def out_of_order(self, client: ChurningClient) -> int:
        got = client.received
        return sum(1 for a, b in itertools.pairwise(got) if b <= a)

    @property
    def disconnects(self) -> int:
        return sum(c.disconnects for c in self.clients)

    @property
    def reloads(self) -> int:
        return sum(r.reloaded for c in self.clients for r in c.reconnects)

    def faults(self) -> dict[str, dict[str, int]]:
        """Per client the count of duplicates, gaps, unexpected and out-of-order events
        where any is not zero."""
        found = {}
        for client in self.clients:
            counts = {
                "duplicates": self.duplicates(client),
                "gaps": self.gaps(client),
                "unexpected": self.unexpected(client),
                "out_of_order": self.out_of_order(client),
            }
            if any(counts.values()):
                found[client.name] = counts
        return found


# A connection idle for longer is not used again: uvicorn closes one after 5 s, and a request
# sent on it just as it does fails (seen on a loaded machine).
KEEP_ALIVE = httpx.Limits(keepalive_expiry=1.0)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _open(endpoint: Endpoint, http: httpx.AsyncClient, token: str) -> ClientConnection:
    answer = await http.post(f"{endpoint.http_url}/api/live/tickets", headers=bearer(token))
    answer.raise_for_status()
    ws = await connect(endpoint.ws_url, open_timeout=10, max_queue=None)
    await ws.send(json.dumps({"type": "auth", "ticket": answer.json()["ticket"]}))
    ready = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert ready["type"] == "ready", ready
    return ws


async def _reload(
    endpoint: Endpoint, http: httpx.AsyncClient, client: ChurningClient, case_id: uuid.UUID
) -> None:
    """What the protocol's ``reload`` asks: read the timeline over REST from the position."""
    while True:
        answer = await http.get(
            f"{endpoint.http_url}/api/cases/{case_id}/events",
            params={"after": client.position, "limit": 500},
            headers=bearer(client.token),
        )
        answer.raise_for_status()
        page = answer.json()
        for event in page["events"]:
            _take(client, event["seq"])
        client.position = max(client.position, page["last_seq"])
        if not page["more"]:
            return


def _take(client: ChurningClient, seq: int) -> None:
    client.received.append(seq)
    client.arrived.setdefault(seq, time.monotonic())
    client.position = max(client.position, seq)


async def churn(
    client: ChurningClient,
    endpoints: list[Endpoint],
    case_id: uuid.UUID,
    scenario: Scenario,
    rng: random.Random,
    done: asyncio.Event,
    final_seq: list[int],
) -> None:
    """Connect, follow from the position, read for a while, drop the socket (abruptly or
    closing it), stay away for a while, again — until the writer is done and the client
    holds the last line posted."""
    async with httpx.AsyncClient(timeout=30, limits=KEEP_ALIVE) as http:
        while True:
            endpoint = rng.choice(endpoints)
            attempt = Reconnect(time.monotonic())
            client.reconnects.append(attempt)
            ws = await _open(endpoint, http, client.token)
            await ws.send(
                json.dumps({"type": "follow", "case_id": str(case_id), "after": client.position})
            )
            stay = rng.uniform(*scenario.online)
            leave_at = time.monotonic() + stay
            try:
                while True:
                    finished = done.is_set() and client.position >= final_seq[0]
                    if finished:
                        await ws.close()
                        return
                    left = leave_at - time.monotonic()
                    if left <= 0 and not done.is_set():
                        break
                    try:
                        frame: dict[str, Any] = json.loads(
                            await asyncio.wait_for(ws.recv(), max(left, 0.05))
                        )
                    except TimeoutError:
                        continue
                    if frame["type"] == "followed":
                        attempt.last_seq = frame["last_seq"]
                        attempt.followed_at = time.monotonic()
                    elif frame["type"] == "event" and frame["case_id"] == str(case_id):
                        _take(client, frame["seq"])
                    elif frame["type"] == "reload":
                        attempt.reloaded = True
                        await _reload(endpoint, http, client, case_id)
                        await ws.send(
                            json.dumps(
                                {
                                    "type": "follow",
                                    "case_id": str(case_id),
                                    "after": client.position,
                                }
                            )
                        )
                    elif frame["type"] in ("error", "unfollowed"):
                        raise AssertionError(f"{client.name} got {frame}")
            except ConnectionClosed as closed:
                raise AssertionError(f"{client.name}: the server closed: {closed}") from None
            # Gone: half the time as a dropped network does it, half with a close frame.
            client.disconnects += 1
            if rng.random() < 0.5:
                ws.transport.abort()
            else:
                await ws.close()
            await asyncio.sleep(rng.uniform(*scenario.offline))


async def post_lines(
    endpoint: Endpoint,
    *,
    case_id: uuid.UUID,
    citizen_token: str,
    staff_token: str,
    scenario: Scenario,
    rng: random.Random,
) -> int:
    """Post ``scenario.messages`` chat lines: mostly the citizen's, with staff replies and
    internal notes (which citizens must never get) among them; the last is the citizen's.
    The last line's ``seq``."""
    async with httpx.AsyncClient(base_url=endpoint.http_url, timeout=30, limits=KEEP_ALIVE) as http:
        started = await http.post(
            "/api/chats",
            json={"case_id": str(case_id), "text": "regel 1"},
            headers=bearer(citizen_token),
        )
        assert started.status_code == 201, started.text
        chat_id = started.json()["chat"]["id"]
        seq: int = started.json()["message"]["seq"]
        for n in range(2, scenario.messages + 1):
            await asyncio.sleep(scenario.pace)
            roll = rng.random() if n < scenario.messages else 0.0
            if roll < 0.6:
                path, token = f"/api/chats/{chat_id}/messages", citizen_token
            elif roll < 0.8:
                path, token = f"/api/chats/{chat_id}/messages", staff_token
            else:
                path, token = f"/api/chats/{chat_id}/notes", staff_token
            answer = await http.post(
                path, json={"text": f"regel {n}", "ref": f"r{n}"}, headers=bearer(token)
            )
            assert answer.status_code == 201, answer.text
            seq = answer.json()["seq"]
        return seq


async def expected_seqs(
    database: Database, case_id: uuid.UUID, audiences: tuple[Audience, ...]
) -> list[int]:
    seqs: list[int] = []
    async with database.session() as session:
        while True:
            page = await events_after(
                session, case_id, seqs[-1] if seqs else 0, audiences=audiences, limit=1000
            )
            seqs += [event.seq for event in page]
            if len(page) < 1000:
                return seqs


def resume_latencies(client: ChurningClient, visible: list[int]) -> list[float]:
    """Per reconnect, milliseconds from asking for a ticket until the client held every event
    it may see that the case had when the server answered ``followed``."""
    found = []
    for attempt in client.reconnects:
        if attempt.last_seq is None or attempt.followed_at is None:
            continue
        owed = [s for s in visible if s <= attempt.last_seq]
        held_at = attempt.followed_at
        if owed and owed[-1] in client.arrived:
            held_at = max(held_at, client.arrived[owed[-1]])
        found.append((held_at - attempt.started) * 1000)
    return found


async def run(
    endpoints: list[Endpoint],
    database: Database,
    *,
    case_id: uuid.UUID,
    citizen_token: str,
    staff_token: str,
    scenario: Scenario,
    citizens: int = 3,
    staff: int = 2,
) -> Outcome:
    """The scenario against running hubs: lines are posted on the first endpoint, clients
    connect to any of them."""
    rng = random.Random(scenario.seed)
    clients = [
        ChurningClient(f"citizen-{n}", citizen_token, ("citizen",)) for n in range(citizens)
    ] + [ChurningClient(f"staff-{n}", staff_token, ("citizen", "staff")) for n in range(staff)]
    done = asyncio.Event()
    final_seq = [0]
    began = time.monotonic()
    tasks = [
        asyncio.create_task(
            churn(c, endpoints, case_id, scenario, random.Random(rng.random()), done, final_seq)
        )
        for c in clients
    ]
    try:
        final_seq[0] = await post_lines(
            endpoints[0],
            case_id=case_id,
            citizen_token=citizen_token,
            staff_token=staff_token,
            scenario=scenario,
            rng=rng,
        )
        done.set()
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    seconds = time.monotonic() - began
    expected = {c.name: await expected_seqs(database, case_id, c.audiences) for c in clients}
    resume = [ms for c in clients for ms in resume_latencies(c, expected[c.name])]
    return Outcome(clients, expected, resume, scenario.messages, seconds)
