"""Web chat end to end over real websockets and HTTP (uvicorn on a free port), on SQLite and
PostgreSQL: the queue, pick-up, hand-over, opening hours, and chats that become or join a
case."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from typing import Any

import httpx
from sqlmodel import select

from hub.chat.service import QUESTION_JOURNEY
from hub.db import Database
from hub.models import (
    Case,
    CaseParticipant,
    Conversation,
    Message,
    OutboxItem,
    Party,
    Team,
    TeamMembership,
)
from tests.builders import bearer, make_agency, make_case, make_party, token_for
from tests.live.harness import (
    LiveClient,
    LiveServer,
    World,
    live_client,
    make_world,
    quick_staff,
)


async def post(http: httpx.AsyncClient, path: str, token: str, body: Any = None) -> Any:
    response = await http.post(path, json=body, headers=bearer(token))
    assert response.status_code in (200, 201), response.text
    return response.json()


async def start(http: httpx.AsyncClient, world: World, text: str = "Hallo") -> Any:
    return await post(
        http, "/api/chats", world.citizen_token, {"case_id": str(world.case_id), "text": text}
    )


async def test_queue_pick_up_and_the_citizen_learns_who_and_which_agency(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, clients: list[LiveClient]
) -> None:
    world = await make_world(database)
    started = await start(http, world, "Waar blijft mijn toeslag?")
    chat_id = started["chat"]["id"]
    assert started["chat"]["status"] == "waiting" and started["opening"]["open"] is True
    citizen = await live_client(live_server, http, world.citizen_token)
    clients.append(citizen)
    await citizen.follow(world.case_id, after=started["message"]["seq"])

    queue = (await http.get("/api/chats/queue", headers=bearer(world.staff_token))).json()
    assert [(e["conversation_id"], e["party_name"]) for e in queue] == [(chat_id, "Jan Jansen")]
    assert queue[0]["waiting_seconds"] >= 0 and queue[0]["for_me"] is False

    async with database.session() as session:  # staff of another agency do not see it
        await make_agency(session, "uwv")
        other = await quick_staff(session, "uwv", "Omar Bakker")
    other_token = await token_for(database, "staff", other.id)
    assert (await http.get("/api/chats/queue", headers=bearer(other_token))).json() == []
    refused = await http.post(f"/api/chats/{chat_id}/pickup", headers=bearer(other_token))
    assert refused.status_code == 404

    picked = await post(http, f"/api/chats/{chat_id}/pickup", world.staff_token)
    assert (picked["status"], picked["staff_name"]) == ("active", "Sanne de Wit")
    told = await citizen.event("chat_picked_up")
    assert told["payload"]["staff_name"] == "Sanne de Wit"
    assert told["payload"]["agency_name"] == "Dienst Toeslagen"
    assert (await http.get("/api/chats/queue", headers=bearer(world.staff_token))).json() == []
    again = await http.post(f"/api/chats/{chat_id}/pickup", headers=bearer(world.staff_token))
    assert again.status_code == 409

    # They chat over the socket; each side sees the other's line.
    staff = await live_client(live_server, http, world.staff_token)
    clients.append(staff)
    await staff.follow(world.case_id, after=told["seq"])
    await staff.send(type="message", case_id=str(world.case_id), body="Ik kijk het na.", ref="s1")
    await staff.expect("ack", ref="s1")
    line = await citizen.event("message", body="Ik kijk het na.")
    assert (line["actor_name"], line["payload"]["channel"]) == ("Sanne de Wit", "webchat")
    await citizen.send(type="message", case_id=str(world.case_id), body="Dank u", ref="c1")
    await staff.event("message", body="Dank u")


async def test_hand_over_with_a_note_the_next_person_sees_everything(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, clients: list[LiveClient]
) -> None:
    world = await make_world(database)
    async with database.session() as session:
        colleague = await quick_staff(session, "toeslagen", "Kees Vos")
    colleague_token = await token_for(database, "staff", colleague.id)
    started = await start(http, world, "Mijn inkomen is veranderd")
    chat_id = started["chat"]["id"]
    await post(http, f"/api/chats/{chat_id}/pickup", world.staff_token)
    await post(
        http, f"/api/chats/{chat_id}/messages", world.staff_token, {"text": "Sinds wanneer?"}
    )
    citizen = await live_client(live_server, http, world.citizen_token)
    clients.append(citizen)
    followed = await citizen.follow(world.case_id, after=0)
    while not citizen.seen or citizen.seen[-1].get("seq") != followed["last_seq"]:
        await citizen.expect("event")

    missing = await http.post(
        f"/api/chats/{chat_id}/handover",
        json={"to_staff_id": str(colleague.id)},
        headers=bearer(world.staff_token),
    )
    assert missing.status_code == 422  # a hand-over needs a note
    handed = await post(
        http,
        f"/api/chats/{chat_id}/handover",
        world.staff_token,
        {"to_staff_id": str(colleague.id), "note": "Inkomenswijziging, vraag om de loonstrook"},
    )
    assert (handed["status"], handed["staff_name"]) == ("waiting", "Kees Vos")
    transferred = await citizen.event("chat_transferred")
    assert transferred["payload"]["agency_name"] == "Dienst Toeslagen"

    queue = (await http.get("/api/chats/queue", headers=bearer(colleague_token))).json()
    assert len(queue) == 1 and queue[0]["for_me"] is True
    assert queue[0]["handover_note"] == "Inkomenswijziging, vraag om de loonstrook"
    assert (await http.get("/api/chats/queue", headers=bearer(world.staff_token))).json() == []
    await post(http, f"/api/chats/{chat_id}/pickup", colleague_token)

    # The colleague reads the whole thread so far, the note included.
    next_person = await live_client(live_server, http, colleague_token)
    clients.append(next_person)
    followed = await next_person.follow(world.case_id, after=0)
    thread = []
    while not thread or thread[-1]["seq"] < followed["last_seq"]:
        thread.append(await next_person.expect("event"))
    bodies = [e["payload"].get("body") for e in thread if e["kind"] in ("message", "note")]
    assert bodies == [
        "Mijn inkomen is veranderd",
        "Sinds wanneer?",
        "Inkomenswijziging, vraag om de loonstrook",
    ]
    assert "chat_handed_over" in {e["kind"] for e in thread}
    picked = await citizen.event("chat_picked_up")
    assert picked["payload"]["staff_name"] == "Kees Vos"
    assert "loonstrook" not in json.dumps(citizen.seen)


async def test_hand_over_to_a_team_or_a_participating_agency_only(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database
) -> None:
    world = await make_world(database)
    async with database.session() as session:
        await make_agency(session, "uwv")
        await make_agency(session, "rdw")
        uwv_staff = await quick_staff(session, "uwv", "Omar Bakker")
        outsider = await quick_staff(session, "toeslagen", "Lotte Smit")
        team = Team(agency_id="toeslagen", name="Inkomen")
        session.add(team)
        await session.flush()
        member = await quick_staff(session, "toeslagen", "Kees Vos")
        assert team.id is not None
        session.add(TeamMembership(team_id=team.id, staff_id=member.id))
        session.add(CaseParticipant(case_id=world.case_id, agency_id="uwv"))
        team_id = team.id
    member_token = await token_for(database, "staff", member.id)
    outsider_token = await token_for(database, "staff", outsider.id)
    uwv_token = await token_for(database, "staff", uwv_staff.id)
    chat_id = (await start(http, world))["chat"]["id"]

    to_team = {"to_team_id": team_id, "note": "Voor team Inkomen"}
    await post(http, f"/api/chats/{chat_id}/handover", world.staff_token, to_team)
    assert len((await http.get("/api/chats/queue", headers=bearer(member_token))).json()) == 1
    assert (await http.get("/api/chats/queue", headers=bearer(outsider_token))).json() == []

    refused = await http.post(
        f"/api/chats/{chat_id}/handover",
        json={"to_agency_id": "rdw", "note": "RDW?"},
        headers=bearer(member_token),
    )
    assert refused.status_code == 422  # the RDW takes no part in this case
    to_uwv = {"to_agency_id": "uwv", "note": "WW-vraag"}
    await post(http, f"/api/chats/{chat_id}/handover", member_token, to_uwv)
    queue = (await http.get("/api/chats/queue", headers=bearer(uwv_token))).json()
    assert [e["handover_note"] for e in queue] == ["WW-vraag"]
    picked = await post(http, f"/api/chats/{chat_id}/pickup", uwv_token)
    assert (picked["agency_id"], picked["staff_name"]) == ("uwv", "Omar Bakker")


async def test_outside_opening_hours_the_citizen_is_told_when_and_offered_email(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, clients: list[LiveClient]
) -> None:
    # Open only on a day that is neither today nor tomorrow: closed now, whatever the time.
    today = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=1)))
    open_day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[(today.weekday() + 3) % 7]
    world = await make_world(database, opening_hours={open_day: [["09:00", "17:00"]]})
    citizen = await live_client(live_server, http, world.citizen_token)
    clients.append(citizen)
    await citizen.follow(world.case_id, after=0)
    started = await start(http, world, "Kan ik mijn toeslag stopzetten?")
    opening = started["opening"]
    assert opening["open"] is False and opening["reply_options"] == ["email"]
    next_opening = dt.datetime.fromisoformat(opening["next_opening"])
    assert next_opening > dt.datetime.now(dt.UTC)
    assert next_opening.strftime("%H:%M") == "09:00"
    told = await citizen.event("chat_outside_hours")
    assert told["payload"]["reply_channels"] == ["email"]
    assert "09:00" in told["payload"]["text"] and "e-mail" in told["payload"]["text"]

    chat_id = started["chat"]["id"]
    no_phone = await http.put(
        f"/api/chats/{chat_id}/reply-channel",
        json={"channel": "sms"},
        headers=bearer(world.citizen_token),
    )
    assert no_phone.status_code == 422
    chosen = await http.put(
        f"/api/chats/{chat_id}/reply-channel",
        json={"channel": "email"},
        headers=bearer(world.citizen_token),
    )
    assert chosen.json()["reply_channel"] == "email"
    await citizen.close()  # the citizen leaves; the answer comes the next morning by email
    broker = live_server.app.state.broker
    for _ in range(100):
        if not await broker.citizen_online(world.case_id):
            break
        await asyncio.sleep(0.02)

    await post(http, f"/api/chats/{chat_id}/pickup", world.staff_token)
    ack = await post(
        http, f"/api/chats/{chat_id}/messages", world.staff_token, {"text": "Ja, dat kan online."}
    )
    async with database.session() as session:
        message = await session.get(Message, uuid.UUID(ack["message_id"]))
        outbox = (
            await session.exec(select(OutboxItem).where(OutboxItem.message_id == message.id))  # type: ignore[union-attr]
        ).all()
    assert message is not None and message.channel == "email"
    assert [(o.channel, o.recipient) for o in outbox] == [("email", "jan@example.nl")]


async def test_a_chat_without_a_case_becomes_a_question_case_at_the_chosen_agency(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, clients: list[LiveClient]
) -> None:
    world = await make_world(database)
    unknown = await http.post(
        "/api/chats", json={"agency_id": "nope", "text": "?"}, headers=bearer(world.citizen_token)
    )
    assert unknown.status_code == 422
    nothing = await http.post("/api/chats", json={}, headers=bearer(world.citizen_token))
    assert nothing.status_code == 422
    started = await post(
        http,
        "/api/chats",
        world.citizen_token,
        {"agency_id": "toeslagen", "text": "Hoe vraag ik huurtoeslag aan?"},
    )
    case_id = started["chat"]["case_id"]
    assert case_id != str(world.case_id)
    async with database.session() as session:
        case = await session.get(Case, uuid.UUID(case_id))
        line = (await session.exec(select(Message).where(Message.case_id == case.id))).one()  # type: ignore[union-attr]
    assert case is not None
    assert (case.journey_id, case.agency_id, case.opened_channel) == (
        QUESTION_JOURNEY,
        "toeslagen",
        "webchat",
    )
    assert (line.body, line.channel, line.identified_by) == (
        "Hoe vraag ik huurtoeslag aan?",
        "webchat",
        "test",
    )
    cases = (await http.get("/api/me/cases", headers=bearer(world.citizen_token))).json()
    assert case_id in {c["id"] for c in cases}
    client = await live_client(live_server, http, world.citizen_token)
    clients.append(client)
    await client.follow(case_id, after=0)
    started_event = await client.event("chat_started")
    assert started_event["payload"]["agency_name"] == "Dienst Toeslagen"
    await client.event("message", body="Hoe vraag ik huurtoeslag aan?")


async def test_staff_attach_a_question_chat_to_the_partys_running_case(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, clients: list[LiveClient]
) -> None:
    world = await make_world(database)
    async with database.session() as session:
        party = await session.get(Party, world.party_id)
        assert party is not None
        running = await make_case(session, party, journey="huurtoeslag")
        stranger = await make_party(session, "Piet Pieters")
        strangers_case = await make_case(session, stranger, journey="huurtoeslag")
    started = await post(
        http, "/api/chats", world.citizen_token, {"agency_id": "toeslagen", "text": "Vraag één"}
    )
    chat_id, question_id = started["chat"]["id"], started["chat"]["case_id"]
    await post(http, f"/api/chats/{chat_id}/pickup", world.staff_token)
    await post(http, f"/api/chats/{chat_id}/messages", world.staff_token, {"text": "Antwoord één"})
    await post(http, f"/api/chats/{chat_id}/notes", world.staff_token, {"text": "Hoort bij HU"})
    citizen = await live_client(live_server, http, world.citizen_token)
    clients.append(citizen)
    await citizen.follow(question_id, after=0)

    wrong = await http.post(
        f"/api/chats/{chat_id}/attach",
        json={"case_id": str(strangers_case.id)},
        headers=bearer(world.staff_token),
    )
    assert wrong.status_code == 422  # never onto another party's case
    moved = await post(
        http, f"/api/chats/{chat_id}/attach", world.staff_token, {"case_id": str(running.id)}
    )
    assert moved["case_id"] == str(running.id)
    told = await citizen.event("chat_moved")
    assert told["payload"]["to_case_id"] == str(running.id)

    async with database.session() as session:
        question = await session.get(Case, uuid.UUID(question_id))
        lines = (
            await session.exec(
                select(Message).where(Message.case_id == running.id).order_by(Message.created_at)  # type: ignore[arg-type]
            )
        ).all()
        conversation = await session.get(Conversation, uuid.UUID(chat_id))
    assert question is not None and (question.status, question.result) == ("closed", "attached")
    assert [(m.body, m.direction) for m in lines] == [
        ("Vraag één", "inbound"),
        ("Antwoord één", "outbound"),
        ("Hoort bij HU", "internal"),
    ]
    assert lines[0].identified_by == "test" and lines[0].meta["moved_from_case"] == question_id
    assert conversation is not None and conversation.case_id == running.id

    # The chat goes on, on the running case.
    await citizen.follow(running.id, after=0)
    ack = await post(http, f"/api/chats/{chat_id}/messages", world.citizen_token, {"text": "Fijn"})
    assert ack["case_id"] == str(running.id)
    await citizen.event("message", body="Fijn")
    assert "Hoort bij HU" not in json.dumps(citizen.seen)


async def test_closing_a_chat_and_who_may(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database
) -> None:
    world = await make_world(database)
    chat_id = (await start(http, world))["chat"]["id"]
    async with database.session() as session:
        stranger = await make_party(session, "Piet Pieters")
    stranger_token = await token_for(database, "citizen", stranger.id)
    refused = await http.post(f"/api/chats/{chat_id}/close", headers=bearer(stranger_token))
    assert refused.status_code == 404
    assert (
        await http.get(f"/api/chats/{chat_id}", headers=bearer(stranger_token))
    ).status_code == 404
    closed = await post(http, f"/api/chats/{chat_id}/close", world.citizen_token)
    assert closed["status"] == "closed" and closed["closed_at"] is not None
    # A new line on the case starts a new chat rather than reopening the closed one.
    restarted = await start(http, world, "Nog een vraag")
    assert restarted["chat"]["id"] != chat_id


async def test_staff_watching_the_queue_are_told_when_it_changes(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database, clients: list[LiveClient]
) -> None:
    world = await make_world(database)
    async with database.session() as session:
        await make_agency(session, "uwv")
        other = await quick_staff(session, "uwv", "Omar Bakker")
    other_token = await token_for(database, "staff", other.id)
    staff = await live_client(live_server, http, world.staff_token)
    elsewhere = await live_client(live_server, http, other_token)
    citizen = await live_client(live_server, http, world.citizen_token)
    clients += [staff, elsewhere, citizen]
    for watcher in (staff, elsewhere):
        await watcher.send(type="watch_queue")
        await watcher.expect("watching_queue")
    await citizen.send(type="watch_queue")
    assert (await citizen.expect("error"))["code"] == "forbidden"

    chat_id = (await start(http, world, "Hallo?"))["chat"]["id"]
    waiting = await staff.expect("queue_changed")
    assert waiting == {"type": "queue_changed", "conversation_id": chat_id, "status": "waiting"}
    await post(http, f"/api/chats/{chat_id}/pickup", world.staff_token)
    assert (await staff.expect("queue_changed"))["status"] == "active"
    assert await elsewhere.quiet(0.3) == []  # another agency's queue did not change
    await staff.send(type="unwatch_queue")
    await staff.expect("unwatched_queue")
    await post(http, f"/api/chats/{chat_id}/close", world.staff_token)
    assert await staff.quiet(0.3, ignore=("presence",)) == []
