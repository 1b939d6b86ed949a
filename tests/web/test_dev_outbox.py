"""The development outbox: a newcomer logs in with a code they find there, and sees their
case's messages; outside development it does not exist."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from hub.app import build_adapters, create_app
from hub.config import Settings
from hub.db import Database
from hub.delivery.worker import deliver_once
from tests.builders import make_party


async def test_a_login_code_lands_in_the_dev_outbox_and_logs_the_citizen_in(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.session() as session:
        await make_party(session, "Anna <script>", email="anna@example.nl")
    asked = await client.post("/api/auth/citizen/code", json={"address": "anna@example.nl"})
    assert asked.status_code == 202
    assert await deliver_once(database, build_adapters(settings, database)) == 1

    entries = (await client.get("/api/dev/outbox")).json()
    assert [e["recipient"] for e in entries] == ["anna@example.nl"]
    assert entries[0]["status"] == "delivered"
    code = re.search(r"\b(\d{6})\b", entries[0]["body"])
    assert code is not None
    page = await client.get("/dev/outbox")
    assert page.status_code == 200 and code.group(1) in page.text

    login = await client.post(
        "/api/auth/citizen/session", json={"address": "anna@example.nl", "code": code.group(1)}
    )
    assert login.status_code == 200
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {login.json()['token']}"})
    assert me.json()["kind"] == "citizen"


async def test_the_dev_outbox_escapes_what_it_shows(
    client: httpx.AsyncClient, database: Database
) -> None:
    from hub.delivery.service import enqueue

    async with database.session() as session:
        await enqueue(
            session,
            channel="email",
            recipient="x@example.nl",
            template="t",
            subject="<b>hi</b>",
            body="<script>alert(1)</script>",
        )
    page = await client.get("/dev/outbox")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    bad = await client.get("/dev/outbox?channel=pigeon")
    assert bad.status_code == 422


async def test_there_is_no_dev_outbox_in_production(tmp_path: Path) -> None:
    settings = Settings(
        environment="production",
        secret_key="x" * 40,
        run_worker=False,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/hub.db",
    )
    database = Database(settings.database_url)
    app = create_app(settings, database=database)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
            assert (await client.get("/dev/outbox")).status_code == 404
            assert (await client.get("/api/dev/outbox")).status_code == 404
    await database.dispose()


async def test_the_dev_outbox_keeps_each_mail_as_sent_with_its_reply_address(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    import email
    import email.policy

    from hub.events.service import Actor
    from hub.messages.service import reply
    from tests.builders import make_agency, make_case

    async with database.session() as session:
        await make_agency(session, "toeslagen")
        party = await make_party(session, "Jan", email="jan@example.nl", preferred_channel="email")
        case = await make_case(session, party)
        await reply(
            session,
            case=case,
            author=Actor(kind="staff", name="Sanne"),
            body="Hallo",
            channel="email",
        )
    while await deliver_once(database, build_adapters(settings, database)):
        pass
    entries = (await client.get("/api/dev/outbox?channel=email")).json()
    answer = next(e for e in entries if e["template"] == "reply")
    raw = await client.get(answer["file_url"])
    assert raw.status_code == 200 and raw.headers["content-type"] == "message/rfc822"
    mail = email.message_from_bytes(raw.content, policy=email.policy.default)
    assert mail["Reply-To"].startswith("reply+")
    assert mail["Message-ID"] == answer["provider_id"]
    assert (await client.get(f"/dev/outbox/{case.id}.eml")).status_code == 404
