"""The citizen's notices and permissions pages: the inbox with read state, a notice opened
is read, and a permission withdrawn here stops the next notice on its topic."""

from __future__ import annotations

import httpx
from sqlmodel import col, select

from hub.config import Settings
from hub.db import Database
from hub.models import Consent, Message, Notice, Party
from tests.builders import key_for
from tests.web.test_pages import csrf_of, log_in_citizen
from tests.web.world import NOTICE_SUBJECT, TOPIC_NL, make_portal_world


async def test_the_inbox_shows_what_is_unread_and_opening_a_notice_reads_it(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world = await make_portal_world(database)
    await log_in_citizen(client, database, settings, world.citizen_email)
    inbox = await client.get("/notices")
    assert NOTICE_SUBJECT in inbox.text
    assert "Nog niet gelezen" in inbox.text and "Belangrijk" in inbox.text

    notice = await client.get(f"/notices/{world.notice_id}")
    assert notice.status_code == 200
    assert "&lt;b&gt;Kijk&lt;/b&gt;" in notice.text  # the body is text, never markup
    async with database.session() as session:
        stored = await session.get(Notice, world.notice_id)
        assert stored is not None and stored.read_at is not None
        first_read = stored.read_at
    await client.get(f"/notices/{world.notice_id}")
    async with database.session() as session:
        again = await session.get(Notice, world.notice_id)
        assert again is not None and again.read_at == first_read  # the first time counts
    assert "Nog niet gelezen" not in (await client.get("/notices")).text


async def test_someone_elses_notice_is_not_found(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world = await make_portal_world(database)
    await log_in_citizen(client, database, settings, "petra@example.nl")
    assert (await client.get(f"/notices/{world.notice_id}")).status_code == 404


async def test_a_permission_withdrawn_on_the_page_stops_the_next_notice(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world = await make_portal_world(database)
    await log_in_citizen(client, database, settings, world.citizen_email)
    page = await client.get("/permissions")
    assert TOPIC_NL in page.text
    assert f'id="topic-{world.topic_id}-yes" name="topic-{world.topic_id}" value="yes" checked' in (
        page.text
    )
    field = f"topic-{world.topic_id}"
    saved = await client.post("/permissions", data={"csrf_token": csrf_of(page.text), field: "no"})
    assert saved.status_code == 303 and saved.headers["location"] == "/permissions?saved=1"
    shown = await client.get(saved.headers["location"])
    assert "Uw keuzes zijn bewaard." in shown.text
    # The same answer again adds nothing to the history.
    await client.post("/permissions", data={"csrf_token": csrf_of(shown.text), field: "no"})
    async with database.session() as session:
        history = (
            await session.exec(
                select(Consent)
                .where(Consent.party_id == world.citizen_id)
                .order_by(col(Consent.recorded_at))
            )
        ).all()
        party = await session.get(Party, world.citizen_id)
    assert [c.granted for c in history] == [True, False]
    assert history[-1].source == "portal" and history[-1].recorded_by_kind == "citizen"

    assert party is not None
    agency = {"Authorization": f"Bearer {await key_for(database, world.agency_id)}"}
    template = await client.put(
        "/api/notice-templates/huurtoeslag-recht/email/nl",
        headers=agency,
        json={"subject": "Huurtoeslag", "body": "U hebt misschien recht op huurtoeslag."},
    )
    assert template.status_code == 200, template.text
    sent = await client.post(
        "/api/notices",
        headers=agency,
        json={"bsn": party.bsn, "topic": "huurtoeslag-recht", "template": "huurtoeslag-recht"},
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["status"] == "not-sent" and sent.json()["reason"] == "no_consent"


async def test_staffs_messages_are_in_the_inbox_until_the_case_is_opened(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world = await make_portal_world(database)
    async with database.session() as session:
        for direction, body in (
            ("outbound", "Wij hebben uw <b>brief</b> ontvangen."),
            ("internal", "Intern: bellen na 1 mei"),
        ):
            session.add(
                Message(
                    case_id=world.waiting_case_id,
                    channel="email",
                    direction=direction,
                    author_kind="staff",
                    author_name="Sanne de Wit",
                    body=body,
                )
            )
    await log_in_citizen(client, database, settings, world.citizen_email)
    inbox = await client.get("/notices")
    section = inbox.text.split('id="messages-heading"')[1]
    assert "Wij hebben uw &lt;b&gt;brief&lt;/b&gt; ontvangen." in section  # escaped, as text
    assert "Intern" not in inbox.text  # internal notes never reach the citizen
    assert "Nog niet gelezen" in section

    assert (await client.get(f"/cases/{world.waiting_case_id}")).status_code == 200
    after = (await client.get("/notices")).text.split('id="messages-heading"')[1]
    assert "Nog niet gelezen" not in after and "Gelezen" in after
    async with database.session() as session:
        internal = (
            await session.exec(select(Message).where(Message.direction == "internal"))
        ).one()
    assert internal.read_at is None
