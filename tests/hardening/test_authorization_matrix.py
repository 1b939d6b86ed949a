"""The authorization matrix: every route the app serves — the OpenAPI document's, the pages',
the live socket — tried as another citizen, another agency's staff, another agency's system
key, and two representatives whose mandate for the owner expired or was revoked.

The table (tests/hardening/table.py) says per route how to fill it with the owner's objects
and who may call it; a route the app serves without an entry, or an entry for a route that
is gone, fails :func:`test_every_route_is_in_the_table`. An intruder must be refused (401,
403, 404, or a page's login redirect) wherever the route is about someone else's things, and
no answer to an intruder — refusal or not, headers included — may hold a byte of the
owner's: case id and reference, name, BSN, email address, phone number, message, note and
chat texts, document name, notice text.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Literal
from urllib.parse import quote

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute
from pydantic import SecretStr
from sqlmodel import select
from starlette.requests import Request
from starlette.routing import Mount, Route

from hub.app import create_app
from hub.auth.dependencies import SESSION_COOKIE
from hub.auth.sessions import create_session
from hub.config import Settings
from hub.db import Database
from hub.models import AccessLogEntry
from hub.web.acting import ACTING_COOKIE
from hub.web.security import CSRF_COOKIE, CSRF_FIELD, csrf_token
from tests.hardening.table import TABLE, Entry
from tests.hardening.world import (
    AGENCY_A,
    AGENCY_B,
    INTRUDER_NAMES,
    INTRUDERS,
    MESSAGE_TEXT,
    PNG,
    Caller,
    Intruder,
    World,
)
from tests.live.harness import LiveClient, LiveServer, open_socket, start_server, ticket_for

REFUSED = frozenset({401, 403, 404})
LOGIN_PAGES = ("/login", "/console/login")
CSRF_SECRET = "c5rf" * 8
STATIC_FILE = "/static/hub.css"
# Query parameters that choose whose data a route answers with.
CHOOSERS = frozenset({"party", "party_id", "agency", "agency_id", "case_id"})
# Path parameters that name the owner's own things: their answers show some of them.
OWNERS_THINGS = ("case_id", "conversation_id", "document_id", "notice_id")


def by_design(action: str, data: str) -> bool:
    """What agency B may read of the owner, logged: the answers to B's own consent topics,
    and the desk's search for the party and their case list ("no wrong door")."""
    return (action, data) == ("read", "consents") or action == "search"


def served(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path) of everything the app answers: API routes and pages (HEAD aside), the
    websocket routes as ``WS``, the API description's routes and the static mount."""
    for context in fastapi.routing.iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIWebSocketRoute):
            yield "WS", context.path or route.path
        elif isinstance(route, APIRoute):
            for method in sorted((context.methods or route.methods or set()) - {"HEAD"}):
                yield method, context.path or route.path
        elif isinstance(route, Route):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                yield method, route.path
        elif isinstance(route, Mount):
            yield "GET", route.path
        else:  # pragma: no cover - a kind of route this test does not know yet
            raise AssertionError(f"the matrix does not know how to try {route!r}")


def bare_app(tmp_path: Any, environment: Literal["test", "production"] = "test") -> FastAPI:
    settings = Settings(
        environment=environment,
        data_dir=tmp_path,
        run_worker=False,
        secret_key=SecretStr("a production secret that is long enough to count " * 2),
    )
    return create_app(settings)


def test_every_route_is_in_the_table(tmp_path: Any) -> None:
    app = bare_app(tmp_path)
    in_app = set(served(app))
    in_table = [entry.key for entry in TABLE]
    assert len(in_table) == len(set(in_table)), "an entry is in the table twice"
    missing = sorted(in_app - set(in_table))
    gone = sorted(set(in_table) - in_app)
    assert not missing, f"routes without an entry in tests/hardening/table.py: {missing}"
    assert not gone, f"entries for routes the app no longer serves: {gone}"
    # Every route of the OpenAPI document is among them (the document is what clients see).
    documented = {
        (method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops
    }
    assert documented <= in_app


def test_every_parameter_that_picks_whose_data_is_tried(tmp_path: Any) -> None:
    """A query parameter that names whose data to answer with (``party``, ``agency``) is
    filled with the owner's or agency A's when the intruders call the route."""
    by_key = {entry.key: entry for entry in TABLE}
    stand_in: Any = SimpleNamespace(owner_id=uuid.uuid4())
    for path, operations in bare_app(tmp_path).openapi()["paths"].items():
        for method, operation in operations.items():
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
            picks = names & CHOOSERS
            if picks:
                entry = by_key[(method.upper(), path)]
                tried = set(entry.query(stand_in)) if entry.query else set()
                assert picks <= tried, f"{entry.id}: try it with {sorted(picks - tried)}"


def test_the_development_outbox_is_not_served_in_production(tmp_path: Any) -> None:
    in_production = set(served(bare_app(tmp_path, "production")))
    dev = [entry.key for entry in TABLE if entry.rule == "dev"]
    assert dev and not in_production & set(dev)


# --- calling a route ----------------------------------------------------------------------


def concrete_path(entry: Entry, world: World) -> str:
    if entry.path == "/static":
        return STATIC_FILE
    values = world.path_values | {name: make(world) for name, make in entry.values.items()}
    path = entry.path
    while "{" in path:
        start = path.index("{")
        name = path[start + 1 : path.index("}", start)]
        assert name in values, f"give the matrix a value for {{{name}}} ({entry.id})"
        path = path.replace(f"{{{name}}}", values[name])
    return path


def page_cookies(caller: Caller) -> dict[str, str]:
    cookies = {SESSION_COOKIE: caller.secret, CSRF_COOKIE: CSRF_SECRET}
    if caller.acting_for is not None:
        cookies[ACTING_COOKIE] = f"{caller.acting_for}.{caller.session_id}"
    return cookies


def form_token(settings: Settings, cookies: dict[str, str]) -> str:
    """The CSRF token a page would have given this browser: the intruder's forms are real."""
    header = "; ".join(f"{name}={value}" for name, value in cookies.items())
    request = Request({"type": "http", "headers": [(b"cookie", header.encode())], "state": {}})
    return csrf_token(request, settings)


@dataclass(frozen=True)
class Sent:
    """What the caller sent: an answer may echo it (a problem's ``instance``, a login
    redirect's ``next``, a form shown again) without telling them anything."""

    path: str
    rest: bytes  # the query and body, as given

    def scrub(self, raw: bytes) -> bytes:
        for echo in {self.path, quote(self.path, safe="/"), quote(self.path, safe="")}:
            raw = raw.replace(echo.encode(), b"")
        return raw


async def call(
    client: httpx.AsyncClient, entry: Entry, world: World, caller: Caller, *, intruder: bool
) -> tuple[httpx.Response, Sent]:
    """The route's answer to ``caller``, and what the caller sent."""
    path = concrete_path(entry, world)
    kwargs = entry.body(world) if entry.body else {}
    headers: dict[str, str] = dict(kwargs.pop("headers", {}))
    params = entry.query(world) if entry.query and (intruder or caller.acting_for) else {}
    if entry.page:
        cookies = page_cookies(caller)
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
        if entry.method == "POST":
            token = form_token(world.settings, cookies)
            kwargs["data"] = {**kwargs.get("data", {}), CSRF_FIELD: token}
    else:
        headers |= caller.headers
    response = await client.request(entry.method, path, params=params, headers=headers, **kwargs)
    return response, Sent(path, f"{params!r} {kwargs!r}".encode())


def refused(entry: Entry, response: httpx.Response) -> bool:
    if response.status_code in REFUSED | entry.also:
        return True
    location = response.headers.get("location", "")
    return entry.page and response.status_code == 303 and location.startswith(LOGIN_PAGES)


def leaks(
    world: World, response: httpx.Response, sent: Sent, *, may_see: frozenset[str] = frozenset()
) -> list[str]:
    """The owner's secrets in the answer (body and headers), less the echo of the path the
    caller asked for and of anything the caller sent in the query or body."""
    raw = response.content + b"\n".join(k + b": " + v for k, v in response.headers.raw)
    raw = sent.scrub(raw)
    return [
        name
        for name, secret in world.secrets.items()
        if name not in may_see and secret in raw and secret not in sent.rest
    ]


async def fresh_login(database: Database, caller: Caller) -> Caller:
    """A second login of the same person, for routes that end the login they are called in."""
    if caller.subject is None:
        return caller
    kind, subject = caller.subject
    async with database.session() as session:
        login, token = await create_session(
            session, subject_kind=kind, subject_id=subject, identified_by="test", hours=1
        )
    return Caller(token, session_id=login.id, acting_for=caller.acting_for, subject=caller.subject)


# --- the matrix ---------------------------------------------------------------------------


def intruder_cases() -> Iterator[Any]:
    for entry in TABLE:
        if entry.rule == "dev" or entry.method == "WS":
            continue
        for intruder in INTRUDERS[:1] if entry.once else INTRUDERS:
            if intruder in entry.allowed and entry.method != "GET" and not entry.reads:
                continue  # allowed by design and it changes something: nothing to prove
            marks = []
            if intruder in entry.xfail:
                marks.append(pytest.mark.xfail(strict=True, reason=entry.xfail[intruder]))
            yield pytest.param(entry, intruder, id=f"{entry.id} as {intruder}", marks=marks)


@pytest.mark.parametrize(("entry", "intruder"), list(intruder_cases()))
async def test_an_intruder_gets_nothing_of_the_owners(
    entry: Entry,
    intruder: str,
    world: World,
    world_client: httpx.AsyncClient,
    world_database: Database,
) -> None:
    caller = world.callers[intruder]
    if entry.ends_session:
        caller = await fresh_login(world_database, caller)
    response, sent = await call(world_client, entry, world, caller, intruder=True)
    assert response.status_code < 500, response.text
    if entry.rule in ("theirs", "secret") and intruder not in entry.allowed:
        assert refused(entry, response), (
            f"{entry.id} as {intruder}: {response.status_code} {response.text[:300]}"
        )
        if response.status_code in entry.also and response.status_code not in REFUSED:
            assert entry.refusal_says in response.text, response.text[:300]
    may_see = entry.sees if intruder in entry.allowed else frozenset()
    leaked = leaks(world, response, sent, may_see=may_see)
    assert not leaked, f"{entry.id} as {intruder} answered with {leaked}: {response.text[:500]}"


async def test_no_intruder_is_in_the_owners_access_log(
    world: World, world_database: Database, world_client: httpx.AsyncClient
) -> None:
    """Run after the matrix: whatever the intruders tried, none of it read or changed the
    owner's data, so the owner's access log names none of them — but for what the design
    lets agency B read, logged (see :func:`by_design`). Staff
    of A reading the case now is logged: the proof that the log is written."""
    read = await world_client.get(
        f"/api/cases/{world.case_id}", headers=world.callers["staff_a"].headers
    )
    assert read.status_code == 200
    async with world_database.session() as session:
        entries = (
            await session.exec(
                select(AccessLogEntry).where(AccessLogEntry.party_id == world.owner_id)
            )
        ).all()
    assert AGENCY_A in {entry.agency_id for entry in entries}
    intruders = [
        (entry.actor_kind, entry.actor_name, entry.action, entry.data)
        for entry in entries
        if (entry.agency_id == AGENCY_B or entry.actor_name in INTRUDER_NAMES)
        and not (entry.agency_id == AGENCY_B and by_design(entry.action, entry.data))
    ]
    assert intruders == []


async def test_agency_b_cannot_put_its_own_chat_on_as_case(
    world: World, world_client: httpx.AsyncClient
) -> None:
    """Not only A's things reached from B: B's own chat moved onto A's case is refused with
    the answer for a case that does not exist, and the chat stays where it was."""
    staff_b = world.callers["staff_b"].headers
    attached = await world_client.post(
        f"/api/chats/{world.b_conversation_id}/attach",
        json={"case_id": str(world.case_id)},
        headers=staff_b,
    )
    assert attached.status_code == 404, attached.text
    sent = Sent(f"/api/chats/{world.b_conversation_id}/attach", str(world.case_id).encode())
    assert not leaks(world, attached, sent)
    chat = await world_client.get(f"/api/chats/{world.b_conversation_id}", headers=staff_b)
    assert chat.status_code == 200
    assert str(world.case_id) not in chat.text


def rightful_cases() -> Iterator[Any]:
    for entry in TABLE:
        if entry.rightful is not None and entry.method == "GET":
            yield pytest.param(entry, id=f"{entry.id} as {entry.rightful}")


@pytest.mark.parametrize("entry", list(rightful_cases()))
async def test_the_rightful_caller_gets_it(
    entry: Entry, world: World, world_client: httpx.AsyncClient
) -> None:
    """The proof that the table fills each route with the owner's real objects: the one who
    may read it gets an answer (so an intruder's 404 means 'not yours', not 'no such')."""
    assert entry.rightful is not None
    caller = world.callers[entry.rightful]
    response, _ = await call(world_client, entry, world, caller, intruder=False)
    assert response.status_code == 200, f"{entry.id}: {response.status_code} {response.text[:300]}"
    if entry.path == "/api/documents/{document_id}":
        assert response.content == PNG
    elif any(f"{{{name}}}" in entry.path for name in OWNERS_THINGS) and not entry.path.endswith(
        ".pdf"
    ):
        shown = [name for name, secret in world.secrets.items() if secret in response.content]
        assert shown, f"{entry.id}: the answer holds none of the owner's things"


# --- the live socket ----------------------------------------------------------------------


# Every frame that names a case, as an intruder sends it for the owner's case; each gets an
# error frame and changes nothing (docs/websocket-protocol.md). ``unfollow`` is left out: it
# answers ``unfollowed`` for any case id, followed or not, which tells nothing.
CASE_FRAMES: tuple[dict[str, Any], ...] = (
    {"type": "follow", "after": 0},
    {"type": "message", "body": "Indringersregel in de chat", "ref": "i-1"},
    {"type": "note", "body": "Indringersnotitie in de chat", "ref": "i-2"},
    {"type": "typing", "active": True},
    {"type": "read", "seq": 1},
)
SOCKET_REFUSALS = frozenset({"not_found", "not_following", "forbidden"})


async def test_an_intruders_ticket_does_not_follow_the_owners_case(
    world: World, world_app: FastAPI, world_database: Database, world_client: httpx.AsyncClient
) -> None:
    """Each intruder with a login gets a ticket and opens the socket; every frame that names
    the owner's case is refused — ``follow`` with the protocol's ``not_found``, as for a case
    that does not exist — and stores nothing. B's staff watching the queue watch B's. Then
    the owner writes and A's staff pick the chat up: the owner and A's queue watcher are told
    (the proof), the intruders get nothing, and the owner sees nothing of theirs."""
    app = create_app(world_app.state.settings, database=world_database)
    server, task, port = await start_server(app)
    live = LiveServer(app, "127.0.0.1", port, server)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:

            async def connect(caller: Caller) -> LiveClient:
                client = LiveClient(
                    await open_socket(live, ticket=await ticket_for(http, caller.secret))
                )
                await client.expect("ready")
                return client

            owner = await connect(world.callers["owner"])
            await owner.follow(world.case_id)
            queue_a = await connect(world.callers["staff_a"])
            await queue_a.send(type="watch_queue")
            await queue_a.expect("watching_queue", agency_id=AGENCY_A)
            intruders: list[tuple[Intruder, LiveClient]] = []
            for name in INTRUDERS:
                caller = world.callers[name]
                if caller.session_id is None:
                    refused_ticket = await http.post("/api/live/tickets", headers=caller.headers)
                    assert refused_ticket.status_code == 403
                    continue
                client = await connect(caller)
                for frame in CASE_FRAMES:
                    await client.send(**frame, case_id=str(world.case_id))
                    answer = await client.recv()
                    assert answer["type"] == "error", (name, frame, answer)
                    assert answer["code"] in SOCKET_REFUSALS, (name, frame, answer)
                    if frame["type"] == "follow":
                        assert answer["code"] == "not_found", (name, answer)
                if name == "staff_b":
                    await client.send(type="watch_queue")
                    await client.expect("watching_queue", agency_id=AGENCY_B)
                intruders.append((name, client))
            # Through the server the sockets are on: its broker tells them.
            said = await http.post(
                f"/api/cases/{world.case_id}/messages",
                json={"body": f"{MESSAGE_TEXT} (live)"},
                headers=world.callers["owner"].headers,
            )
            assert said.status_code == 201, said.text
            await owner.event("message")
            picked = await http.post(
                f"/api/chats/{world.conversation_id}/pickup",
                headers=world.callers["staff_a"].headers,
            )
            assert picked.status_code == 200, picked.text
            await queue_a.expect("queue_changed", conversation_id=str(world.conversation_id))
            for who, client in intruders:
                frames = await client.quiet(0.3, ignore=("pong",))
                assert frames == [], (who, frames)
                seen = repr(client.seen).encode()
                # The refusals name the case id the intruder sent; nothing else of the owner's.
                others = [s for n, s in world.secrets.items() if n != "case_id" and s in seen]
                assert not others, (who, client.seen)
                await client.close()
            await owner.quiet(0.2)
            assert not [n for n in INTRUDER_NAMES if n in repr(owner.seen)], owner.seen
            for client in (owner, queue_a):
                await client.close()
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await task
    messages = await world_client.get(
        f"/api/cases/{world.case_id}/messages", headers=world.callers["staff_a"].headers
    )
    assert "Indringers" not in messages.text


def test_the_matrix_size() -> None:
    """Every route but the development outbox's is tried as every intruder (less the few
    the design lets through where they only change something)."""
    tried = list(intruder_cases())
    routes = {entry.key for entry in TABLE if entry.rule != "dev"}
    assert len(tried) >= len(routes) * len(INTRUDERS) - 30


def rightful_caller(entry: Entry) -> str | None:
    if entry.rightful is not None:
        return entry.rightful
    if entry.page and entry.rule == "theirs":
        return "staff_a" if entry.path.startswith("/console") else "owner"
    return None


def changing_cases() -> Iterator[Any]:
    # Ending the owner's mandate comes last: the live representative's proofs need it.
    for entry in sorted(TABLE, key=lambda e: "revoke" in e.path):
        changes = entry.method not in ("GET", "WS") and entry.rule == "theirs"
        if changes and rightful_caller(entry) is not None:
            yield pytest.param(entry, id=f"{entry.id} as {rightful_caller(entry)}")


# Defined last, so that it runs after every intruder has tried the world as it was built.
@pytest.mark.parametrize("entry", list(changing_cases()))
async def test_the_rightful_caller_may_change_it(
    entry: Entry, world: World, world_client: httpx.AsyncClient
) -> None:
    """The same proof for the routes that change something: the rightful caller is let in.
    The journey or the state may still say no — a 409, or a 422 that names a rule of ours
    (a page shows its form again) — but never 401, 403 or 404, nor a 422 of the schema."""
    caller = world.callers[rightful_caller(entry) or "owner"]
    response, _ = await call(world_client, entry, world, caller, intruder=False)
    if entry.page:
        location = response.headers.get("location", "")
        assert response.status_code in (200, 303, 409, 422), response.text[:300]
        assert not location.startswith(LOGIN_PAGES), location
        return
    answer = f"{entry.id}: {response.status_code} {response.text[:300]}"
    if response.status_code == 422:
        assert "errors" not in response.json(), answer
    else:
        assert 200 <= response.status_code < 300 or response.status_code == 409, answer
