"""The staff console over HTTP, beyond logging in: the queue's service-norm warning, replying
to the citizen on their channel, canned replies without script, internal notes the citizen
never sees, handing a chat over, and the journey actions of a case."""

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import replace

import httpx
import pyotp
from sqlmodel import col, select

from hub.app import build_adapters
from hub.config import Settings
from hub.db import Database, utcnow
from hub.delivery.worker import deliver_once
from hub.demo import DEMO_PASSWORD, demo_totp_secret, load_demo
from hub.models import AccessLogEntry, Case, Conversation, DigitalAddress, Message, Party
from journeys.catalog import load_catalog
from tests.builders import make_mandate, make_party, make_staff
from tests.web.test_pages import csrf_of, log_in_citizen, log_in_staff
from tests.web.world import MAIL_BODY, PortalWorld, make_portal_world


async def backdate_mail(database: Database, world: PortalWorld, hours: int) -> None:
    """The citizen's mail arrived ``hours`` ago."""
    async with database.session() as session:
        mail = (
            await session.exec(select(Message).where(Message.case_id == world.mail_case_id))
        ).one()
        mail.created_at = utcnow() - dt.timedelta(hours=hours)
        session.add(mail)


async def test_the_queue_flags_a_message_waiting_longer_than_the_service_norm(
    client: httpx.AsyncClient, database: Database
) -> None:
    world = await make_portal_world(database)
    await log_in_staff(client, world)
    fresh = (await client.get("/console")).text
    assert "Op tijd" in fresh and "Over de norm" not in fresh
    assert "De norm: een antwoord binnen 24 uur." in fresh

    assert "De norm: een chat wordt binnen 10 minuten opgepakt." in fresh

    await backdate_mail(database, world, hours=30)
    async with database.session() as session:
        waiting = await session.get(Conversation, world.chat_id)
        assert waiting is not None
        waiting.waiting_since = utcnow() - dt.timedelta(minutes=15)
        session.add(waiting)
    late = (await client.get("/console")).text
    assert "1 bericht wacht al langer dan de norm." in late
    assert "1 chat wacht al langer dan de norm." in late
    rows = [row[: row.index("</tr>")] for row in late.split('class="over-norm"')[1:]]
    assert len(rows) == 2 and all("Over de norm" in row for row in rows)
    assert "15 minuten" in rows[0] and "Jan Jansen" in rows[0]
    assert "Vraag over huur" in rows[1]


async def test_staff_reply_on_the_citizens_last_channel_and_the_mail_goes_out(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world = await make_portal_world(database)
    await log_in_staff(client, world)
    page = await client.get(f"/console/cases/{world.mail_case_id}")
    assert "Het kanaal dat de burger het laatst gebruikte (E-mail)" in page.text
    tracker = page.text[page.text.index('<ol class="tracker">') :]
    tracker = tracker[: tracker.index("</ol>")]
    assert "Begonnen op" in tracker and 'aria-current="step"' in tracker

    sent = await client.post(
        f"/console/cases/{world.mail_case_id}/reply",
        data={"csrf_token": csrf_of(page.text), "body": "Uw huur is in orde.", "do": "send"},
    )
    assert sent.status_code == 303
    shown = await client.get(sent.headers["location"])
    assert "Uw antwoord is verstuurd." in shown.text and "Kanaal: E-mail" in shown.text
    assert "Uw huur is in orde." in shown.text
    # Answered: the message no longer waits in the queue.
    assert "Onbeantwoorde berichten (0)" in (await client.get("/console")).text

    await deliver_once(database, build_adapters(settings, database))
    mails = (await client.get("/api/dev/outbox", params={"channel": "email"})).json()
    reply = next(m for m in mails if "Uw huur is in orde." in m["body"])
    assert reply["recipient"] == world.citizen_email


async def test_a_reply_that_cannot_go_comes_back_with_the_text_kept(
    client: httpx.AsyncClient, database: Database
) -> None:
    world = await make_portal_world(database)
    await log_in_staff(client, world)
    page = await client.get(f"/console/cases/{world.mail_case_id}")
    empty = await client.post(
        f"/console/cases/{world.mail_case_id}/reply",
        data={"csrf_token": csrf_of(page.text), "body": "  ", "do": "send"},
    )
    assert empty.status_code == 422
    assert "Schrijf eerst het antwoord, of kies een standaardantwoord." in empty.text
    async with database.session() as session:
        outbound = (
            await session.exec(
                select(Message).where(
                    Message.case_id == world.mail_case_id, Message.direction == "outbound"
                )
            )
        ).all()
    assert outbound == []

    async with database.session() as session:
        session.add(
            DigitalAddress(
                party_id=world.citizen_id, kind="phone", value="+31612345678", verified_at=utcnow()
            )
        )
    long_text = "Uw huurcontract is binnen. " * 70
    too_long = await client.post(
        f"/console/cases/{world.mail_case_id}/reply",
        data={"csrf_token": csrf_of(page.text), "body": long_text, "channel": "sms"},
    )
    assert too_long.status_code == 422
    assert "Het antwoord is te lang voor een sms." in too_long.text
    assert long_text.strip() in html.unescape(too_long.text)  # kept, to shorten
    assert '<option value="sms" selected>' in too_long.text


async def test_a_canned_reply_is_put_in_the_reply_box_without_script(
    client: httpx.AsyncClient, database: Database
) -> None:
    world = await make_portal_world(database)
    await log_in_staff(client, world)
    page = await client.get(f"/console/cases/{world.mail_case_id}")
    assert 'value="received"' in page.text and "data-text=" in page.text
    used = await client.post(
        f"/console/cases/{world.mail_case_id}/reply",
        data={
            "csrf_token": csrf_of(page.text),
            "template": "received",
            "channel": "email",
            "body": "",
            "do": "use",
        },
    )
    assert used.status_code == 200
    box = re.search(r'<textarea id="reply-body"[^>]*>(.*?)</textarea>', used.text, re.S)
    assert box is not None
    text = html.unescape(box.group(1))
    assert text.startswith("Beste Jan Jansen,")
    assert "Sanne de Wit" in text and "Dienst Toeslagen" in text
    assert '<option value="email" selected>' in used.text
    # Nothing was sent: the text waits for staff to adjust and send it.
    async with database.session() as session:
        case = await session.get(Case, world.mail_case_id)
        assert case is not None
        outbound = (
            await session.exec(
                select(Message).where(Message.case_id == case.id, Message.direction == "outbound")
            )
        ).all()
    assert outbound == []


async def test_an_internal_note_is_for_staff_and_never_reaches_the_citizen(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world = await make_portal_world(database)
    transport = client._transport
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as staff:
        await log_in_staff(staff, world)
        page = await staff.get(f"/console/cases/{world.mail_case_id}")
        noted = await staff.post(
            f"/console/cases/{world.mail_case_id}/notes",
            data={"csrf_token": csrf_of(page.text), "text": "Bel <b>eerst</b> de verhuurder."},
        )
        assert noted.status_code == 303
        shown = (await staff.get(noted.headers["location"])).text
        assert "Uw interne notitie is bewaard." in shown
        assert "Bel &lt;b&gt;eerst&lt;/b&gt; de verhuurder." in shown
        assert "Interne notitie · Sanne de Wit" in shown
    await log_in_citizen(client, database, settings, world.citizen_email)
    citizen = await client.get(f"/cases/{world.mail_case_id}")
    assert citizen.status_code == 200 and MAIL_BODY[:10] in html.unescape(citizen.text)
    assert "verhuurder" not in citizen.text


async def test_staff_hand_a_chat_over_to_a_colleague_who_reads_the_note(
    client: httpx.AsyncClient, database: Database
) -> None:
    world = await make_portal_world(database)
    async with database.session() as session:
        colleague = await make_staff(
            session, "toeslagen", email="kees@toeslagen.test", name="Kees Bakker"
        )
    await log_in_staff(client, world)
    page = await client.get(f"/console/cases/{world.chat_case_id}")
    assert "Collega: Kees Bakker" in page.text
    form = re.search(r'action="(/console/chats/[0-9a-f-]+/handover)"', page.text)
    assert form is not None
    handed = await client.post(
        form.group(1),
        data={
            "csrf_token": csrf_of(page.text),
            "to": f"staff:{colleague.id}",
            "note": "Vraag over huurtoeslag, wil terugbellen.",
        },
    )
    assert handed.status_code == 303 and handed.headers["location"] == "/console?done=handover"
    queue = (await client.get(handed.headers["location"])).text
    assert "De chat is overgedragen." in queue
    assert "Wachtende chats (0)" in queue  # it waits for Kees, not for Sanne

    assert colleague.totp_secret is not None
    as_kees = replace(world, staff_email=colleague.email, totp_secret=colleague.totp_secret)
    async with httpx.AsyncClient(transport=client._transport, base_url="http://hub.test") as kees:
        assert (await log_in_staff(kees, as_kees)).status_code == 303
        theirs = (await kees.get("/console")).text
        assert "Wachtende chats (1)" in theirs
        assert "Aan u overgedragen" in theirs
        assert "Vraag over huurtoeslag, wil terugbellen." in theirs


async def test_staff_put_a_case_on_hold_go_on_and_extend_the_time_for_a_decision(
    client: httpx.AsyncClient, database: Database
) -> None:
    world = await make_portal_world(database)
    await log_in_staff(client, world)
    target = f"/console/cases/{world.mail_case_id}/actions"
    page = await client.get(f"/console/cases/{world.mail_case_id}")
    token = csrf_of(page.text)
    held = await client.post(
        target, data={"csrf_token": token, "kind": "suspend", "reason": "Wacht op de gemeente"}
    )
    assert held.status_code == 303
    shown = (await client.get(held.headers["location"])).text
    assert "De zaak staat stil." in shown and "Ga verder met de zaak" in shown
    extended = await client.post(
        target,
        data={
            "csrf_token": token,
            "kind": "extend",
            "days": "10",
            "unit": "working",
            "reason": "Wij hebben meer tijd nodig",
        },
    )
    assert extended.status_code == 303
    assert (
        "De tijd voor een besluit is verlengd."
        in (await client.get(extended.headers["location"])).text
    )
    resumed = await client.post(target, data={"csrf_token": token, "kind": "resume"})
    assert resumed.status_code == 303
    shown = (await client.get(resumed.headers["location"])).text
    history = shown[shown.index('id="history-heading"') : shown.index('id="thread-heading"')]
    assert "Zaak stilgezet</strong>: Wacht op de gemeente" in history
    assert "Tijd voor een besluit verlengd</strong>: Wij hebben meer tijd nodig" in history
    assert history.index("Zaak gestart") < history.index("Zaak stilgezet")
    assert "Weer verder gegaan" in history and "Sanne de Wit" in history
    async with database.session() as session:
        case = await session.get(Case, world.mail_case_id)
        assert case is not None and case.status == "open"
        assert len(case.state["extensions"]) == 1
        changes = (
            await session.exec(
                select(AccessLogEntry).where(
                    AccessLogEntry.case_id == case.id, col(AccessLogEntry.action) == "change"
                )
            )
        ).all()
    assert len(changes) == 3


async def test_the_demo_gives_the_console_a_late_mail_and_two_messages_to_review(
    client: httpx.AsyncClient, database: Database
) -> None:
    await load_demo(database, load_catalog())
    page = await client.get("/console/login")
    logged_in = await client.post(
        "/console/login",
        data={
            "csrf_token": csrf_of(page.text),
            "email": "sanne@toeslagen.demo",
            "password": DEMO_PASSWORD,
            "code": pyotp.TOTP(demo_totp_secret("sanne@toeslagen.demo")).now(),
        },
    )
    assert logged_in.status_code == 303
    queue = (await client.get("/console")).text
    assert "1 bericht wacht al langer dan de norm." in queue
    assert "Vraag over mijn huurtoeslag" in queue
    review = (await client.get("/console/review")).text
    assert "Vraag over mijn aanvraag" in review and "When will I hear from you?" in review


async def test_the_case_page_shows_who_may_act_for_the_citizen_and_for_what(
    client: httpx.AsyncClient, database: Database
) -> None:
    world = await make_portal_world(database)
    async with database.session() as session:
        jan = await session.get(Party, world.citizen_id)
        assert jan is not None
        helper = await make_party(session, "Petra Hulp")
        gone = await make_party(session, "Oud Hulp")
        await make_mandate(session, representative=helper, party=jan, journeys=["huurtoeslag"])
        await make_mandate(session, representative=gone, party=jan, revoked=True)
    await log_in_staff(client, world)
    page = (await client.get(f"/console/cases/{world.mail_case_id}")).text
    assert re.search(r"Petra Hulp \(voor: Huurtoeslag[^)]*\)", page)
    assert "Oud Hulp" not in page  # a revoked mandate lets nobody act
