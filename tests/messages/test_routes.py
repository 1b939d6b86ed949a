"""The thread API on SQLite and PostgreSQL: every channel in order, replies on the channel the
citizen last used or the one staff choose (with fallback), notes for staff only, who may
read and write, and the access log."""

from __future__ import annotations

import uuid

import httpx
from sqlmodel import col, select

from hub.db import Database
from hub.events.service import Actor
from hub.messages.service import post_message
from hub.models import AccessLogEntry, CaseEvent, Document, Message, OutboxItem, ProcessingActivity
from tests.builders import bearer, key_for, make_party, token_for
from tests.messages.world import World, open_for


def thread_url(world: World) -> str:
    return f"/api/cases/{world.question.id}/messages"


async def citizen_wrote(database: Database, world: World, channel: str, body: str) -> Message:
    """A message from Anna on ``channel``, as that channel's adapter would post it."""
    async with database.session() as session:
        case = await session.get(type(world.question), world.question.id)
        assert case is not None
        return await post_message(
            session,
            case=case,
            channel=channel,
            direction="inbound",
            author=Actor(kind="citizen", id=str(world.anna.id), name=world.anna.name),
            body=body,
            original_body=f"{body}\n\n> quoted history" if channel == "email" else None,
            identified_by={"email": "reply_token", "sms": "verified_phone"}.get(channel, "otp"),
        )


async def test_the_thread_shows_every_channel_in_order(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    for channel, body in [("webchat", "Hallo?"), ("email", "Mijn vraag"), ("sms", "En nog")]:
        await citizen_wrote(database, world, channel, body)
    posted = await client.post(
        thread_url(world), json={"body": "Via het portaal"}, headers=bearer(world.anna_token)
    )
    assert posted.status_code == 201, posted.text

    thread = await client.get(thread_url(world), headers=bearer(world.sanne_token))
    assert thread.status_code == 200
    lines = thread.json()
    assert [(m["channel"], m["body"]) for m in lines] == [
        ("webchat", "Hallo?"),
        ("email", "Mijn vraag"),
        ("sms", "En nog"),
        ("portal", "Via het portaal"),
    ]
    seqs = [m["seq"] for m in lines]
    assert seqs == sorted(seqs) and None not in seqs
    assert [m["identified_by"] for m in lines] == ["otp", "reply_token", "verified_phone", "test"]
    assert {m["direction"] for m in lines} == {"inbound"}
    assert lines[0]["author_name"] == "Anna de Boer"


async def test_citizens_see_the_shown_body_staff_may_ask_for_the_original(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    await citizen_wrote(database, world, "email", "Kort antwoord")
    staff = await client.get(
        thread_url(world), params={"original": "true"}, headers=bearer(world.sanne_token)
    )
    assert staff.json()[0]["original_body"] == "Kort antwoord\n\n> quoted history"
    plain = await client.get(thread_url(world), headers=bearer(world.sanne_token))
    assert plain.json()[0]["original_body"] is None

    citizen = await client.get(thread_url(world), headers=bearer(world.anna_token))
    assert citizen.json()[0]["body"] == "Kort antwoord"
    assert citizen.json()[0]["original_body"] is None and citizen.json()[0]["meta"] is None
    refused = await client.get(
        thread_url(world), params={"original": "true"}, headers=bearer(world.anna_token)
    )
    assert refused.status_code == 403


async def test_a_reply_goes_on_the_channel_the_citizen_last_wrote_on(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    await citizen_wrote(database, world, "email", "Eerst gemaild")
    await citizen_wrote(database, world, "sms", "Toen ge-sms't")
    reply = await client.post(
        thread_url(world),
        json={"body": "Dank, wij kijken ernaar."},
        headers=bearer(world.sanne_token),
    )
    assert reply.status_code == 201, reply.text
    answer = reply.json()
    assert answer["channel"] == "sms" and answer["direction"] == "outbound"
    assert answer["author_name"] == "Sanne de Wit" and answer["delivery_status"] == "pending"
    assert answer["requested_channel"] is None
    async with database.session() as session:
        outbox = (
            await session.exec(select(OutboxItem).where(col(OutboxItem.message_id).is_not(None)))
        ).all()
    assert [(o.channel, o.recipient, o.message_id) for o in outbox] == [
        ("sms", "+31612345001", uuid.UUID(answer["id"]))
    ]


async def test_a_reply_on_a_channel_without_address_falls_back_and_says_so(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    async with database.session() as session:
        party = await make_party(session, "Kees", phone="+31612345099")
        case = await open_for(session, party, "vraag", agency_id="toeslagen")
    reply = await client.post(
        f"/api/cases/{case.id}/messages",
        json={"body": "Uw antwoord", "channel": "email"},
        headers=bearer(world.sanne_token),
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["channel"] == "sms" and reply.json()["requested_channel"] == "email"
    async with database.session() as session:
        fallback = (
            await session.exec(
                select(CaseEvent).where(
                    CaseEvent.case_id == case.id, CaseEvent.kind == "channel_fallback"
                )
            )
        ).one()
    assert fallback.payload == {"from": "email", "to": "sms", "reason": "no_address"}
    kees = await token_for(database, "citizen", party.id)
    seen = await client.get(f"/api/cases/{case.id}/messages", headers=bearer(kees))
    assert [m["body"] for m in seen.json()] == ["Uw antwoord"]


async def test_staff_choose_the_letter_for_a_reply(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    reply = await client.post(
        thread_url(world),
        json={"body": "Wij schrijven u.", "channel": "letter"},
        headers=bearer(world.sanne_token),
    )
    assert reply.json()["channel"] == "letter"
    async with database.session() as session:
        item = (
            await session.exec(select(OutboxItem).where(col(OutboxItem.message_id).is_not(None)))
        ).one()
    assert item.channel == "letter" and item.recipient.startswith("Lange Gracht 1")


async def test_internal_notes_reach_staff_only(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    note = await client.post(
        thread_url(world),
        json={"body": "Klant belt vaak; geduld.", "internal": True},
        headers=bearer(world.sanne_token),
    )
    assert note.status_code == 201, note.text
    assert note.json()["direction"] == "internal"
    await client.post(thread_url(world), json={"body": "Vraag"}, headers=bearer(world.anna_token))

    staff = await client.get(thread_url(world), headers=bearer(world.sanne_token))
    assert [m["direction"] for m in staff.json()] == ["internal", "inbound"]
    for token in (world.anna_token, world.rita_token):
        citizen = await client.get(thread_url(world), headers=bearer(token))
        assert [m["body"] for m in citizen.json()] == ["Vraag"]
        events = await client.get(f"/api/cases/{world.question.id}/events", headers=bearer(token))
        assert "Klant belt vaak" not in events.text
    async with database.session() as session:
        assert (
            await session.exec(select(OutboxItem).where(col(OutboxItem.message_id).is_not(None)))
        ).all() == []


async def test_a_representative_writes_on_the_portal_as_representative(
    client: httpx.AsyncClient, world: World
) -> None:
    posted = await client.post(
        thread_url(world), json={"body": "Namens Anna"}, headers=bearer(world.rita_token)
    )
    assert posted.status_code == 201, posted.text
    assert posted.json()["author_kind"] == "representative"
    assert posted.json()["author_name"] == "Rita Jansen"
    assert posted.json()["channel"] == "portal" and posted.json()["identified_by"] == "test"


async def test_others_get_the_same_404_as_for_a_case_that_does_not_exist(
    client: httpx.AsyncClient, world: World
) -> None:
    missing = "/api/cases/00000000-0000-4000-8000-000000000000/messages"
    for token in (world.bram_token, world.lotte_token):
        for url in (thread_url(world), missing):
            read = await client.get(url, headers=bearer(token))
            write = await client.post(url, json={"body": "x"}, headers=bearer(token))
            assert read.status_code == write.status_code == 404
            assert read.json()["detail"] == "No such case."
    assert (await client.get(thread_url(world))).status_code == 401


async def test_bad_messages_are_refused_clearly(client: httpx.AsyncClient, world: World) -> None:
    cases = [
        ({"body": "x" * 10_001}, world.anna_token, "10,001 characters; the most we take is 10,000"),
        ({"body": "   "}, world.anna_token, "empty"),
        ({"body": "a\x00b"}, world.anna_token, "control characters"),
        ({"body": "hoi", "internal": True}, world.anna_token, "portal"),
        ({"body": "hoi", "channel": "sms"}, world.anna_token, "portal"),
        ({"body": "hoi", "channel": "fax"}, world.sanne_token, "does not match"),
        ({"body": "hoi", "internal": True, "channel": "sms"}, world.sanne_token, "no channel"),
    ]
    for body, token, needle in cases:
        response = await client.post(thread_url(world), json=body, headers=bearer(token))
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert needle in response.text, (body, response.text)
    accepted = await client.post(
        thread_url(world), json={"body": "x" * 10_000}, headers=bearer(world.anna_token)
    )
    assert accepted.status_code == 201


async def test_staff_reads_are_access_logged_own_reads_are_not(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    await client.get(thread_url(world), headers=bearer(world.anna_token))
    await client.get(thread_url(world), headers=bearer(world.rita_token))
    await client.get(thread_url(world), headers=bearer(world.sanne_token))
    async with database.session() as session:
        rows = (
            await session.exec(select(AccessLogEntry).order_by(col(AccessLogEntry.created_at)))
        ).all()
        activity = (
            await session.exec(
                select(ProcessingActivity).where(
                    ProcessingActivity.code == "vragen-beantwoorden",
                    ProcessingActivity.agency_id == "toeslagen",
                )
            )
        ).one()
    assert [(r.actor_kind, r.action, r.data) for r in rows] == [
        ("representative", "read", "messages"),
        ("staff", "read", "messages"),
    ]
    assert rows[1].party_id == world.anna.id and rows[1].case_id == world.question.id
    assert rows[1].processing_activity_id == activity.id


async def test_attachments_are_listed_with_their_message(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    message = await citizen_wrote(database, world, "email", "Zie bijlage")
    async with database.session() as session:
        document = Document(
            case_id=world.question.id,
            party_id=world.anna.id,
            message_id=message.id,
            filename="loonstrook.pdf",
            content_type="application/pdf",
            size=1234,
            sha256="0" * 64,
            storage_key="00/" + "0" * 64,
            source="email",
            uploaded_by_kind="citizen",
        )
        session.add(document)
    thread = await client.get(thread_url(world), headers=bearer(world.anna_token))
    assert thread.json()[0]["attachments"] == [
        {
            "id": str(document.id),
            "filename": "loonstrook.pdf",
            "content_type": "application/pdf",
            "size": 1234,
        }
    ]


async def test_an_agency_system_replies_and_notes_under_its_own_name(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    key = await key_for(database, "toeslagen")
    reply = await client.post(
        thread_url(world), json={"body": "Uw aanvraag is binnen."}, headers=bearer(key)
    )
    note = await client.post(
        thread_url(world),
        json={"body": "Automatisch verwerkt", "internal": True},
        headers=bearer(key),
    )
    assert reply.status_code == note.status_code == 201, (reply.text, note.text)
    assert reply.json()["author_kind"] == "agency" and reply.json()["identified_by"] == "api_key"
    assert (note.json()["channel"], note.json()["direction"]) == ("api", "internal")
    events = await client.get(f"/api/cases/{world.question.id}/events", headers=bearer(key))
    by_seq = {e["seq"]: e for e in events.json()["events"]}
    assert by_seq[reply.json()["seq"]]["payload"]["message_id"] == reply.json()["id"]
    assert by_seq[note.json()["seq"]]["kind"] == "note"
    other = await key_for(database, "uwv")
    assert (await client.get(thread_url(world), headers=bearer(other))).status_code == 404
