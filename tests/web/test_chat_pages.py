"""The chat pages without script: a citizen chats on a case, chooses how the answer reaches
him and ends the chat, or asks an agency a question; staff reply and close; the live socket's
ticket for the cookie session. Each form wants its CSRF token, and nobody reaches a chat
that is not theirs: another citizen, or staff of another agency, gets a 404."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import httpx
from sqlmodel import col, select

from hub.auth.sessions import resolve_session
from hub.chat.hours import DAYS
from hub.clock import local_today
from hub.config import Settings
from hub.db import Database
from hub.live.tickets import read_ticket
from hub.models import AccessLogEntry, Agency, Case, Conversation, Message
from tests.builders import make_agency, make_staff, token_for
from tests.web.test_pages import csrf_of, log_in_citizen, log_in_staff
from tests.web.world import CHAT_TEXT, PortalWorld, make_portal_world

LINE = "Mijn huur is <b>te hoog</b> & ik wil hulp."


async def logged_in_as(
    transport: httpx.AsyncBaseTransport, database: Database, kind: str, subject_id: uuid.UUID
) -> httpx.AsyncClient:
    """A browser with the session cookie a login would have set."""
    browser = httpx.AsyncClient(transport=transport, base_url="http://hub.test")
    browser.cookies.set("hub_session", await token_for(database, kind, subject_id))  # type: ignore[arg-type]
    return browser


async def conversations_of(database: Database, case_id: uuid.UUID) -> list[Conversation]:
    async with database.session() as session:
        query = select(Conversation).where(Conversation.case_id == case_id)
        return list((await session.exec(query)).all())


async def test_a_citizen_chats_on_his_case_chooses_the_answers_channel_and_ends_the_chat(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world = await make_portal_world(database)
    await log_in_citizen(client, database, settings, world.citizen_email)
    page = await client.get(f"/cases/{world.mail_case_id}")
    assert "Chat met Dienst Toeslagen" in page.text
    assert "Schrijf hieronder uw bericht." in page.text
    assert f'action="/cases/{world.mail_case_id}/messages"' in page.text
    assert 'aria-live="polite"' in page.text and 'src="/static/live.js"' in page.text
    assert await conversations_of(database, world.mail_case_id) == []

    token = csrf_of(page.text)
    empty = await client.post(
        f"/cases/{world.mail_case_id}/messages", data={"csrf_token": token, "text": " "}
    )
    assert empty.status_code == 303
    shown = await client.get(empty.headers["location"])
    assert "Schrijf eerst een bericht." in shown.text and 'aria-invalid="true"' in shown.text

    sent = await client.post(
        f"/cases/{world.mail_case_id}/messages",
        data={"csrf_token": csrf_of(page.text), "text": LINE},
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/cases/{world.mail_case_id}#chat"
    page = await client.get(f"/cases/{world.mail_case_id}")
    assert "Mijn huur is &lt;b&gt;te hoog&lt;/b&gt; &amp; ik wil hulp." in page.text
    assert "<b>te hoog</b>" not in page.text
    assert "Uw chat wacht op een medewerker." in page.text
    [conversation] = await conversations_of(database, world.mail_case_id)
    assert conversation.status == "waiting"
    # The page follows live from the last event it shows.
    async with database.session() as session:
        case = await session.get(Case, world.mail_case_id)
        assert case is not None
    assert f'data-after="{case.last_seq}"' in page.text
    assert 'data-timezone="Europe/Amsterdam"' in page.text

    # Jan has a verified email address: he may have the answer by email once he has left.
    assert 'value="email"' in page.text and 'value="sms"' not in page.text
    chosen = await client.post(
        f"/cases/{world.mail_case_id}/chat/reply-channel",
        data={"csrf_token": csrf_of(page.text), "channel": "email"},
    )
    assert chosen.status_code == 303
    refused = await client.post(
        f"/cases/{world.mail_case_id}/chat/reply-channel",
        data={"csrf_token": csrf_of(page.text), "channel": "sms"},
    )
    assert refused.status_code == 422
    ended = await client.post(
        f"/cases/{world.mail_case_id}/chat/close", data={"csrf_token": csrf_of(page.text)}
    )
    assert ended.status_code == 303
    [conversation] = await conversations_of(database, world.mail_case_id)
    assert (conversation.reply_channel, conversation.status) == ("email", "closed")
    page = await client.get(f"/cases/{world.mail_case_id}")
    assert "Schrijf hieronder uw bericht." in page.text  # a next line starts a new chat
    assert f'action="/cases/{world.mail_case_id}/chat/close"' not in page.text


async def test_the_chat_box_says_when_the_chat_opens_outside_opening_hours(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world = await make_portal_world(database)
    async with database.session() as session:
        agency = await session.get(Agency, world.agency_id)
        assert agency is not None
        # Open only on the weekday three days from now (in Amsterdam), so closed today.
        later = local_today(settings.timezone) + dt.timedelta(days=3)
        agency.opening_hours = {DAYS[later.weekday()]: [["09:00", "17:00"]]}
        session.add(agency)
    await log_in_citizen(client, database, settings, world.citizen_email)
    page = await client.get(f"/cases/{world.mail_case_id}")
    assert "De chat is nu gesloten. U krijgt antwoord vanaf" in page.text
    assert " om 09:00" in page.text


async def test_a_citizen_asks_an_agency_a_question_and_goes_on_in_its_chat(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world = await make_portal_world(database)
    await log_in_citizen(client, database, settings, world.citizen_email)
    page = await client.get("/questions/new")
    assert page.status_code == 200
    assert '<option value="toeslagen">Dienst Toeslagen</option>' in page.text

    incomplete = await client.post(
        "/questions", data={"csrf_token": csrf_of(page.text), "agency": "toeslagen", "text": ""}
    )
    assert incomplete.status_code == 422
    assert "Kies een organisatie en schrijf uw vraag." in incomplete.text
    elsewhere = await client.post(
        "/questions", data={"csrf_token": csrf_of(page.text), "agency": "nowhere", "text": "Hoi"}
    )
    assert elsewhere.status_code == 422

    question = {"agency": "toeslagen", "text": "Wanneer betaalt u?"}
    asked = await client.post("/questions", data={"csrf_token": csrf_of(page.text), **question})
    assert asked.status_code == 303
    found = re.fullmatch(r"/cases/([0-9a-f-]+)#chat", asked.headers["location"])
    assert found is not None
    case_page = await client.get(f"/cases/{found.group(1)}")
    assert "Wanneer betaalt u?" in case_page.text
    assert "Uw chat wacht op een medewerker." in case_page.text
    [conversation] = await conversations_of(database, uuid.UUID(found.group(1)))
    assert conversation.agency_id == "toeslagen" and conversation.status == "waiting"


async def test_staff_reply_in_the_chat_and_close_it_and_reading_it_is_logged(
    client: httpx.AsyncClient, database: Database
) -> None:
    world = await make_portal_world(database)
    await log_in_staff(client, world)
    chat_page = f"/console/chats/{world.chat_id}"
    page = await client.get(chat_page)
    assert page.status_code == 200
    assert "Chat met Jan Jansen" in page.text and CHAT_TEXT in page.text
    assert "Deze chat wacht in de wachtrij." in page.text
    assert f'action="/console/chats/{world.chat_id}/pickup"' in page.text
    async with database.session() as session:
        reads = (
            await session.exec(
                select(AccessLogEntry).where(
                    AccessLogEntry.case_id == world.chat_case_id, AccessLogEntry.data == "chat"
                )
            )
        ).all()
    assert [entry.actor_kind for entry in reads] == ["staff"]
    assert reads[0].processing_activity_id is not None

    picked = await client.post(
        f"/console/chats/{world.chat_id}/pickup", data={"csrf_token": csrf_of(page.text)}
    )
    assert picked.status_code == 303
    page = await client.get(chat_page)
    assert "U hebt deze chat. De burger ziet uw naam." in page.text
    replied = await client.post(
        f"/console/chats/{world.chat_id}/messages",
        data={"csrf_token": csrf_of(page.text), "text": "Goedemiddag, <i>ik</i> help u."},
    )
    assert replied.status_code == 303 and replied.headers["location"] == f"{chat_page}#chat"
    page = await client.get(chat_page)
    assert "Goedemiddag, &lt;i&gt;ik&lt;/i&gt; help u." in page.text
    async with database.session() as session:
        reply = (
            await session.exec(
                select(Message).where(
                    Message.case_id == world.chat_case_id, Message.direction == "outbound"
                )
            )
        ).one()
    assert reply.author_name == "Sanne de Wit"

    closed = await client.post(
        f"/console/chats/{world.chat_id}/close", data={"csrf_token": csrf_of(page.text)}
    )
    assert closed.status_code == 303
    page = await client.get(chat_page)
    assert "De chat is gestopt." in page.text
    assert f'action="/console/chats/{world.chat_id}/messages"' not in page.text
    late = await client.post(
        f"/console/chats/{world.chat_id}/messages",
        data={"csrf_token": csrf_of(page.text), "text": "Nog iets"},
    )
    assert late.status_code == 409


async def test_nobody_reaches_a_chat_that_is_not_theirs(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world = await make_portal_world(database)
    async with database.session() as session:
        await make_agency(session, "rdw")
        stranger = await make_staff(session, "rdw", name="Piet Post")
        petra = (
            await session.exec(select(Case.party_id).where(col(Case.id) == world.other_case_id))
        ).one()
    transport = client._transport
    async with (
        await logged_in_as(transport, database, "citizen", petra) as other_citizen,
        await logged_in_as(transport, database, "staff", stranger.id) as other_staff,
    ):
        token = csrf_of((await other_citizen.get("/my-cases")).text)
        for path in (
            f"/cases/{world.chat_case_id}/messages",
            f"/cases/{world.chat_case_id}/chat/close",
            f"/cases/{world.chat_case_id}/chat/reply-channel",
        ):
            refused = await other_citizen.post(path, data={"csrf_token": token, "text": "Hoi"})
            assert refused.status_code == 404, path
        assert (await other_staff.get(f"/console/chats/{world.chat_id}")).status_code == 404
        token = csrf_of((await other_staff.get("/console")).text)
        for path in (
            f"/console/chats/{world.chat_id}/messages",
            f"/console/chats/{world.chat_id}/close",
        ):
            refused = await other_staff.post(path, data={"csrf_token": token, "text": "Hoi"})
            assert refused.status_code == 404, path
        # The citizen's own staff page is not for citizens, nor the citizen's page for staff.
        assert (await other_citizen.get(f"/console/chats/{world.chat_id}")).status_code == 303
    async with database.session() as session:
        lines = (
            await session.exec(select(Message).where(Message.case_id == world.chat_case_id))
        ).all()
    assert [line.body for line in lines] == [CHAT_TEXT]
    assert [c.status for c in await conversations_of(database, world.chat_case_id)] == ["waiting"]


async def test_the_page_trades_its_cookie_session_for_a_live_ticket_with_its_csrf_token(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world: PortalWorld = await make_portal_world(database)
    anonymous_token = csrf_of((await client.get("/login")).text)
    anonymous = await client.post("/live/ticket", data={"csrf_token": anonymous_token})
    assert anonymous.status_code == 401

    await log_in_citizen(client, database, settings, world.citizen_email)
    page = await client.get(f"/cases/{world.chat_case_id}")
    assert (await client.post("/live/ticket", data={})).status_code == 403
    issued = await client.post("/live/ticket", data={"csrf_token": csrf_of(page.text)})
    assert issued.status_code == 201
    assert issued.headers["cache-control"] == "no-store"
    body = issued.json()
    assert body["subprotocol"] == "hub.live.v1" and body["expires_in"] == 60
    ticket = read_ticket(settings.secret_key.get_secret_value(), body["ticket"])
    assert ticket is not None
    cookie = client.cookies.get("hub_session")
    assert cookie is not None
    async with database.session() as session:
        login = await resolve_session(session, cookie)
    assert login is not None and ticket.session_id == login.id
