"""The live socket over real websockets (uvicorn on a free port), on SQLite and PostgreSQL:
tickets, origin, limits, resume and reload, the audience rule, and access that ends."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel import col, select
from websockets.exceptions import ConnectionClosed, InvalidStatus

from hub.db import Database, utcnow
from hub.events.fanout import LiveEvent
from hub.events.service import Actor, append_event
from hub.live.connection import LiveConnection, connections
from hub.live.protocol import Close
from hub.live.tickets import issue_ticket
from hub.models import Case, CaseEvent, Conversation, LoginSession, Mandate, Message
from tests.builders import bearer, make_case, make_mandate, make_party, token_for
from tests.live.harness import (
    BASE_URL,
    PORTAL_ORIGIN,
    LiveClient,
    LiveServer,
    World,
    live_client,
    make_world,
    open_socket,
    ticket_for,
)


async def say(http: httpx.AsyncClient, token: str, case_id: object, text: str) -> dict[str, object]:
    """A chat line over REST (starting the case's chat when needed)."""
    response = await http.post(
        "/api/chats", json={"case_id": str(case_id), "text": text}, headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    message = response.json()["message"]
    assert message is not None
    return dict(message)


async def staff_say(
    http: httpx.AsyncClient, database: Database, world: World, text: str
) -> dict[str, object]:
    """A staff reply over REST on the case's chat (started by the citizen before)."""
    async with database.session() as session:
        chat = (
            await session.exec(select(Conversation).where(Conversation.case_id == world.case_id))
        ).one()
    response = await http.post(
        f"/api/chats/{chat.id}/messages", json={"text": text}, headers=bearer(world.staff_token)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


# --- authentication ------------------------------------------------------------------------


async def test_ticket_in_the_first_frame(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database
) -> None:
    world = await make_world(database)
    ticket = await ticket_for(http, world.citizen_token)
    async with open_socket(live_server) as ws:
        client = LiveClient(ws)
        await client.send(type="auth", ticket=ticket)
        ready = await client.expect("ready")
        assert ready["viewer"] == {"kind": "citizen", "name": "Jan Jansen"}
        assert ready["limits"]["max_frame_bytes"] == 16_384
        await client.send(type="ping")
        await client.expect("pong")


async def test_ticket_in_the_subprotocol_header_is_not_echoed(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database
) -> None:
    world = await make_world(database)
    ticket = await ticket_for(http, world.staff_token)
    async with open_socket(live_server, ticket=ticket) as ws:
        assert ws.subprotocol == "hub.live.v1"
        ready = await LiveClient(ws).expect("ready")
        assert ready["viewer"] == {"kind": "staff", "name": "Sanne de Wit"}


async def test_a_ticket_works_once(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database
) -> None:
    world = await make_world(database)
    ticket = await ticket_for(http, world.citizen_token)
    async with open_socket(live_server, ticket=ticket) as ws:
        await LiveClient(ws).expect("ready")
    async with open_socket(live_server, ticket=ticket) as ws:
        assert await LiveClient(ws).closed_with() == Close.AUTH_FAILED


async def test_bad_expired_or_missing_tickets_are_refused(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database
) -> None:
    world = await make_world(database)
    async with database.session() as session:
        login = (
            await session.exec(
                select(LoginSession).where(LoginSession.subject_id == world.party_id)
            )
        ).one()
    secret = live_server.app.state.settings.secret_key.get_secret_value()
    expired = issue_ticket(secret, login.id, -1)
    forged = issue_ticket("another secret", login.id, 60)
    for ticket in (expired, forged, "not-a-ticket"):
        async with open_socket(live_server) as ws:
            client = LiveClient(ws)
            await client.send(type="auth", ticket=ticket)
            assert await client.closed_with() == Close.AUTH_FAILED
    async with open_socket(live_server) as ws:  # something else before authenticating
        client = LiveClient(ws)
        await client.send(type="follow", case_id=str(world.case_id), after=0)
        assert await client.closed_with() == Close.PROTOCOL
    # An agency's API key gets no ticket: tickets stand for a person's session.
    response = await http.post("/api/live/tickets")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_ticket_in_the_query_string_is_refused_and_burnt(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database
) -> None:
    world = await make_world(database)
    ticket = await ticket_for(http, world.citizen_token)
    with pytest.raises(InvalidStatus) as refused:
        async with open_socket(live_server, path=f"/api/live?ticket={ticket}"):
            pass
    assert refused.value.response.status_code == 403
    problem = json.loads(refused.value.response.body or b"{}")
    assert "query string" in problem["detail"]
    # The ticket reached a URL (and so, perhaps, a log): it no longer opens anything.
    async with open_socket(live_server) as ws:
        client = LiveClient(ws)
        await client.send(type="auth", ticket=ticket)
        assert await client.closed_with() == Close.AUTH_FAILED
    with pytest.raises(InvalidStatus):
        async with open_socket(live_server, path=f"/api/live?token={world.citizen_token}"):
            pass


async def test_origin_is_checked(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database
) -> None:
    world = await make_world(database)
    with pytest.raises(InvalidStatus) as refused:
        async with open_socket(live_server, origin="https://evil.example.com"):
            pass
    assert refused.value.response.status_code == 403
    for origin in (BASE_URL, PORTAL_ORIGIN, "https://HUB.example.nl:443"):
        ticket = await ticket_for(http, world.citizen_token)
        async with open_socket(live_server, ticket=ticket, origin=origin) as ws:
            await LiveClient(ws).expect("ready")


# --- limits --------------------------------------------------------------------------------


async def test_a_frame_too_large_closes_with_1009(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database
) -> None:
    world = await make_world(database)
    client = await live_client(live_server, http, world.citizen_token)
    await client.send(type="message", case_id=str(world.case_id), body="x" * 20_000)
    assert await client.closed_with() == Close.TOO_BIG
    async with database.session() as session:
        assert (await session.exec(select(Message))).all() == []


async def test_too_many_frames_close_with_a_policy_code(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database
) -> None:
    world = await make_world(database)
    client = await live_client(live_server, http, world.citizen_token)
    for _ in range(60):
        await client.send(type="ping")
    for _ in range(60):
        await client.expect("pong")
    await client.send(type="ping")
    assert await client.closed_with() == Close.POLICY


# --- resume and reload -----------------------------------------------------------------------


async def test_resume_after_a_position_then_live_without_gap_or_duplicate(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, clients: list[LiveClient]
) -> None:
    world = await make_world(database)
    first = await say(http, world.citizen_token, world.case_id, "one")
    await say(http, world.citizen_token, world.case_id, "two")
    await say(http, world.citizen_token, world.case_id, "three")
    client = await live_client(live_server, http, world.citizen_token)
    clients.append(client)
    followed = await client.follow(world.case_id, after=first["seq"])
    last = followed["last_seq"]
    replayed = [await client.expect("event") for _ in range(last - int(first["seq"]))]
    assert [e["seq"] for e in replayed] == list(range(int(first["seq"]) + 1, last + 1))
    assert [e["payload"]["body"] for e in replayed if e["kind"] == "message"] == ["two", "three"]
    await staff_say(http, database, world, "four")  # staff reply, live
    live = await client.event("message")
    assert live["seq"] == last + 1 and live["payload"]["body"] == "four"
    assert await client.quiet(0.3, ignore=("presence",)) == []


async def test_reload_for_a_position_too_old_in_the_future_or_malformed(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, clients: list[LiveClient]
) -> None:
    world = await make_world(database)
    async with database.session() as session:
        case = await session.get(Case, world.case_id)
        assert case is not None
        start = case.last_seq
        session.add_all(
            CaseEvent(
                case_id=case.id,
                seq=start + n,
                kind="status_changed",
                actor_kind="system",
                payload={},
            )
            for n in range(1, 1102)
        )
        await session.exec(
            update(Case).where(col(Case.id) == case.id).values(last_seq=start + 1101)
        )
    last = start + 1101
    client = await live_client(live_server, http, world.citizen_token)
    clients.append(client)
    cases = str(world.case_id)
    positions = [(0, "too_old"), (last + 1, "future")]
    positions += [(bad, "malformed") for bad in ("12", -1, 1.5, None, True)]
    for after, reason in positions:
        await client.send(type="follow", case_id=cases, after=after)
        reload = await client.expect("reload")
        assert (reload["reason"], reload["last_seq"], reload["case_id"]) == (reason, last, cases)
    await client.follow(world.case_id, after=last - 1000)  # just inside the window
    replayed = [await client.expect("event") for _ in range(1000)]
    assert replayed[0]["seq"] == last - 999 and replayed[-1]["seq"] == last


# --- the audience rule and access ----------------------------------------------------------


async def test_internal_notes_never_reach_the_citizen_live_or_on_replay(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, clients: list[LiveClient]
) -> None:
    world = await make_world(database)
    started = await say(http, world.citizen_token, world.case_id, "Is mijn aanvraag binnen?")
    citizen = await live_client(live_server, http, world.citizen_token)
    staff = await live_client(live_server, http, world.staff_token)
    clients += [citizen, staff]
    await citizen.follow(world.case_id, after=started["seq"])
    await staff.follow(world.case_id, after=started["seq"])
    await staff.send(
        type="note", case_id=str(world.case_id), body="Inkomen 2025 nakijken", ref="n1"
    )
    ack = await staff.expect("ack", ref="n1")
    await staff.event("note", text="Inkomen 2025 nakijken")
    await staff.send(
        type="message", case_id=str(world.case_id), body="Ja, hij is binnen.", ref="m1"
    )
    reply = await citizen.event("message", body="Ja, hij is binnen.")
    assert reply["seq"] == ack["seq"] + 1
    assert all(f.get("kind") != "note" for f in citizen.seen)
    # On replay from the start: the citizen's lines and the reply, never the note.
    again = await live_client(live_server, http, world.citizen_token)
    clients.append(again)
    followed = await again.follow(world.case_id, after=0)
    replayed = []
    while not replayed or replayed[-1]["seq"] < followed["last_seq"]:
        replayed.append(await again.expect("event"))
    assert "note" not in {e["kind"] for e in replayed}
    assert all(e["audience"] == "citizen" for e in replayed)
    assert "Inkomen" not in json.dumps(replayed)
    staff_again = await live_client(live_server, http, world.staff_token)
    clients.append(staff_again)
    await staff_again.follow(world.case_id, after=0)
    await staff_again.event("note", text="Inkomen 2025 nakijken")


async def test_another_citizens_case_is_refused(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, clients: list[LiveClient]
) -> None:
    world = await make_world(database)
    async with database.session() as session:
        other = await make_party(session, "Piet Pieters")
    other_token = await token_for(database, "citizen", other.id)
    client = await live_client(live_server, http, other_token)
    clients.append(client)
    await client.send(type="follow", case_id=str(world.case_id), after=0)
    refused = await client.expect("error")
    assert (refused["code"], refused["case_id"]) == ("not_found", str(world.case_id))
    await client.send(type="message", case_id=str(world.case_id), body="hallo", ref="x")
    assert (await client.expect("error", ref="x"))["code"] == "not_found"
    await client.send(type="typing", case_id=str(world.case_id))
    assert (await client.expect("error"))["code"] == "not_following"
    async with database.session() as session:
        assert (await session.exec(select(Message))).all() == []


async def test_a_representative_follows_by_mandate_until_it_is_revoked(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, clients: list[LiveClient]
) -> None:
    world = await make_world(database)
    async with database.session() as session:
        helper = await make_party(session, "Els Bewindvoerder")
        party = await session.get(type(helper), world.party_id)
        assert party is not None
        mandate = await make_mandate(session, representative=helper, party=party)
    helper_token = await token_for(database, "citizen", helper.id)
    client = await live_client(live_server, http, helper_token)
    clients.append(client)
    await client.follow(world.case_id, after=0)
    await client.send(type="message", case_id=str(world.case_id), body="Namens Jan", ref="r1")
    await client.expect("ack", ref="r1")
    line = await client.event("message", body="Namens Jan")
    assert line["actor_kind"] == "representative"
    async with database.session() as session:
        await session.exec(
            update(Mandate).where(col(Mandate.id) == mandate.id).values(revoked_at=utcnow())
        )
    await staff_say(http, database, world, "Dit mag de vertegenwoordiger niet meer zien")
    gone = await client.expect("unfollowed", within=3)
    assert gone["reason"] == "forbidden"
    assert "niet meer zien" not in json.dumps(client.seen)
    await client.send(type="follow", case_id=str(world.case_id), after=0)
    assert (await client.expect("error"))["code"] == "not_found"


async def test_a_revoked_session_stops_delivery_at_once(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, clients: list[LiveClient]
) -> None:
    world = await make_world(database)
    hello = await say(http, world.citizen_token, world.case_id, "Hallo")
    client = await live_client(live_server, http, world.citizen_token)
    clients.append(client)
    await client.follow(world.case_id, after=hello["seq"])
    response = await http.delete("/api/auth/session", headers=bearer(world.citizen_token))
    assert response.status_code == 204
    await staff_say(http, database, world, "Na het uitloggen")
    assert await client.closed_with(3) == Close.REVOKED
    assert "Na het uitloggen" not in json.dumps(client.seen)


# --- signals ---------------------------------------------------------------------------------


async def test_typing_presence_and_read_markers_are_fanned_out_not_stored(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, clients: list[LiveClient]
) -> None:
    world = await make_world(database)
    staff = await live_client(live_server, http, world.staff_token)
    clients.append(staff)
    followed = await staff.follow(world.case_id, after=0)
    assert followed["citizen_online"] is False
    citizen = await live_client(live_server, http, world.citizen_token)
    clients.append(citizen)
    await citizen.follow(world.case_id, after=0)
    online = await staff.expect("presence", state="online")
    assert online["who"] == {"kind": "citizen", "name": "Jan Jansen"}
    await citizen.send(type="typing", case_id=str(world.case_id), active=True)
    typing = await staff.expect("typing")
    assert (typing["who"]["name"], typing["active"]) == ("Jan Jansen", True)
    await staff.send(type="read", case_id=str(world.case_id), seq=3)
    read = await citizen.expect("read")
    assert (read["who"], read["seq"]) == ({"kind": "staff", "name": "Sanne de Wit"}, 3)
    assert all(f["type"] != "typing" for f in citizen.seen)  # not echoed to the sender
    assert await live_server.app.state.broker.citizen_online(world.case_id)
    async with database.session() as session:
        case = await session.get(Case, world.case_id)
        assert case is not None
        kinds = set((await session.exec(select(CaseEvent.kind))).all())
    assert not kinds & {"typing", "read", "presence"}
    await citizen.close()
    await staff.expect("presence", state="offline")
    assert not await live_server.app.state.broker.citizen_online(world.case_id)


async def test_events_appended_anywhere_reach_followers_after_commit(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, clients: list[LiveClient]
) -> None:
    world = await make_world(database)
    client = await live_client(live_server, http, world.citizen_token)
    clients.append(client)
    followed = await client.follow(world.case_id, after=0)
    broker = live_server.app.state.broker
    async with database.session() as session:
        await append_event(
            session, case_id=world.case_id, kind="advanced", actor=Actor.system(), broker=broker
        )
        await asyncio.sleep(0.2)
        assert all(f.get("kind") != "advanced" for f in client.seen)
    event = await client.event("advanced")
    assert event["seq"] == followed["last_seq"] + 1


async def test_shutdown_tells_clients_to_reconnect(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database
) -> None:
    world = await make_world(database)
    client = await live_client(live_server, http, world.citizen_token)
    await client.follow(world.case_id, after=0)
    assert len(connections(live_server.app.state)) == 1
    assert isinstance(next(iter(connections(live_server.app.state))), LiveConnection)
    live_server.server.should_exit = True
    assert await client.closed_with() == Close.RECONNECT


async def test_a_message_is_committed_before_its_ack(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, clients: list[LiveClient]
) -> None:
    world = await make_world(database)
    async with database.session() as session:
        party = await session.get(type(await make_party(session)), world.party_id)
        assert party is not None
        second = await make_case(session, party)
    client = await live_client(live_server, http, world.citizen_token)
    clients.append(client)
    await client.send(type="message", case_id=str(second.id), body="Hallo", ref="a1")
    ack = await client.expect("ack", ref="a1")
    async with database.session() as session:  # another connection sees it: committed
        stored = (await session.exec(select(Message).where(Message.case_id == second.id))).one()
    assert str(stored.id) == ack["message_id"]
    assert (stored.channel, stored.direction, stored.identified_by) == (
        "webchat",
        "inbound",
        "test",
    )
    # The same ref again (a resend after a reconnect) stores nothing new.
    await client.send(type="message", case_id=str(second.id), body="Hallo", ref="a1")
    again = await client.expect("ack", ref="a1")
    assert (again["message_id"], again["seq"]) == (ack["message_id"], ack["seq"])
    async with database.session() as session:
        assert len((await session.exec(select(Message))).all()) == 1
    # The same ref on another case is another line.
    await client.send(type="message", case_id=str(world.case_id), body="Hallo", ref="a1")
    other = await client.expect("ack", ref="a1", case_id=str(world.case_id))
    assert other["message_id"] != ack["message_id"]
    async with database.session() as session:
        assert len((await session.exec(select(Message))).all()) == 2


async def test_a_skipped_number_is_read_from_the_log_in_order(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, clients: list[LiveClient]
) -> None:
    """Two processes may publish out of order; the log has both once the later one is out."""
    world = await make_world(database)
    client = await live_client(live_server, http, world.citizen_token)
    clients.append(client)
    followed = await client.follow(world.case_id, after=0)
    while not client.seen or client.seen[-1].get("seq") != followed["last_seq"]:
        await client.expect("event")
    async with database.session() as session:
        await append_event(session, case_id=world.case_id, kind="first", actor=Actor.system())
        second = await append_event(
            session, case_id=world.case_id, kind="second", actor=Actor.system()
        )
    await live_server.app.state.broker.publish(LiveEvent.from_event(second))  # only the later
    got = [await client.expect("event"), await client.expect("event")]
    assert [(e["kind"], e["seq"]) for e in got] == [
        ("first", followed["last_seq"] + 1),
        ("second", followed["last_seq"] + 2),
    ]
    await live_server.app.state.broker.publish(LiveEvent.from_event(second))  # a late copy
    assert await client.quiet(0.3, ignore=("presence",)) == []


async def drop_connections(database: Database) -> None:
    """What a database restart does to the hub's pooled connections: they are cut."""
    admin = create_async_engine(database.url, poolclass=NullPool)
    async with admin.connect() as connection:
        await connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    await admin.dispose()


@pytest.mark.parametrize("database", ["postgres"], indirect=True)  # it cuts PG backends
async def test_cut_database_connections_cost_a_resend_and_never_the_session_check(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, clients: list[LiveClient]
) -> None:
    """Without a pre-ping, the first use of a cut connection fails: a line is then not
    acknowledged (the client resends it under its ref, and it is stored once), and the
    once-a-second session check goes on with a fresh connection."""
    world = await make_world(database)
    client = await live_client(live_server, http, world.citizen_token)
    clients.append(client)
    await client.follow(world.case_id, after=0)
    await drop_connections(database)
    await client.send(type="message", case_id=str(world.case_id), body="Na de herstart", ref="h1")
    try:
        ack = await client.expect("ack", ref="h1")
    except ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code == Close.SERVER_ERROR
        client = await live_client(live_server, http, world.citizen_token)
        clients.append(client)
        await client.send(
            type="message", case_id=str(world.case_id), body="Na de herstart", ref="h1"
        )
        ack = await client.expect("ack", ref="h1")
    async with database.session() as session:
        stored = (await session.exec(select(Message.id))).all()
    assert [str(m) for m in stored] == [ack["message_id"]]

    await client.follow(world.case_id, after=ack["seq"])
    await drop_connections(database)
    await asyncio.sleep(1.5)  # the session check meets a cut connection first
    response = await http.delete("/api/auth/session", headers=bearer(world.citizen_token))
    assert response.status_code == 204
    assert await client.closed_with(3) == Close.REVOKED
