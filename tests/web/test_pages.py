"""The portal and console pages over HTTP: logging in, My cases, a case's tracker, sending the
document asked for, the staff queue; and what keeps them safe — CSRF tokens, the security
headers, escaping, the access log, and both languages."""

from __future__ import annotations

import re

import httpx
import pyotp
from fastapi import FastAPI
from sqlmodel import col, select

from hub.app import build_adapters
from hub.config import Settings
from hub.db import Database
from hub.delivery.worker import deliver_once
from hub.models import AccessLogEntry, Case, Document
from hub.web.security import CONTENT_SECURITY_POLICY
from tests.builders import make_agency, make_case, make_party
from tests.web.routes import audience, concrete_path, html_pages, page_forms
from tests.web.world import (
    MAIL_BODY,
    PNG,
    WHAT_IS_ASKED,
    PortalWorld,
    make_portal_world,
)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


async def log_in_citizen(
    client: httpx.AsyncClient, database: Database, settings: Settings, address: str
) -> None:
    page = await client.get("/login")
    asked = await client.post(
        "/login", data={"csrf_token": csrf_of(page.text), "address": address, "next": "/my-cases"}
    )
    assert asked.status_code == 200 and 'name="code"' in asked.text
    await deliver_once(database, build_adapters(settings, database))
    body = (await client.get("/api/dev/outbox", params={"limit": 1})).json()[0]["body"]
    code = re.search(r"\b(\d{6})\b", body)
    assert code is not None
    logged_in = await client.post(
        "/login/code",
        data={
            "csrf_token": csrf_of(asked.text),
            "address": address,
            "code": code.group(1),
            "next": "/my-cases",
        },
    )
    assert logged_in.status_code == 303, logged_in.text
    assert logged_in.headers["location"] == "/my-cases"


async def log_in_staff(client: httpx.AsyncClient, world: PortalWorld) -> httpx.Response:
    page = await client.get("/console/login")
    return await client.post(
        "/console/login",
        data={
            "csrf_token": csrf_of(page.text),
            "email": world.staff_email,
            "password": world.staff_password,
            "code": pyotp.TOTP(world.totp_secret).now(),
        },
    )


async def test_a_citizen_logs_in_with_a_code_and_sees_every_case(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world = await make_portal_world(database)
    anonymous = await client.get("/my-cases")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=/my-cases"

    await log_in_citizen(client, database, settings, world.citizen_email)
    cookie = next(c for c in client.cookies.jar if c.name == "hub_session")
    assert cookie.has_nonstandard_attr("HttpOnly") and not cookie.secure

    page = await client.get("/my-cases")
    assert page.status_code == 200
    assert page.text.count('<li class="card') == 3  # Jan's three cases, not Petra's
    assert "U moet iets doen vóór" in page.text
    assert page.headers["cache-control"] == "no-store"


async def test_a_wrong_code_is_refused_on_the_page_and_counted(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world = await make_portal_world(database)
    page = await client.get("/login")
    asked = await client.post(
        "/login", data={"csrf_token": csrf_of(page.text), "address": world.citizen_email}
    )
    for _ in range(5):
        refused = await client.post(
            "/login/code",
            data={"csrf_token": csrf_of(asked.text), "address": world.citizen_email, "code": "1"},
        )
        assert refused.status_code == 401
        assert "De code is niet goed of niet meer geldig" in refused.text
    await deliver_once(database, build_adapters(settings, database))
    body = (await client.get("/api/dev/outbox", params={"limit": 1})).json()[0]["body"]
    code = re.search(r"\b(\d{6})\b", body)
    assert code is not None
    # Five wrong tries made the code void: even the right one no longer works.
    late = await client.post(
        "/login/code",
        data={
            "csrf_token": csrf_of(asked.text),
            "address": world.citizen_email,
            "code": code.group(1),
        },
    )
    assert late.status_code == 401


async def test_the_case_page_shows_the_tracker_the_turn_the_contact_and_the_thread(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world = await make_portal_world(database)
    await client.get("/language/en?next=/login")
    await log_in_citizen(client, database, settings, world.citizen_email)

    waiting = await client.get(f"/cases/{world.waiting_case_id}")
    assert waiting.status_code == 200
    html = waiting.text
    assert '<html lang="en">' in html
    assert 'aria-current="step"' in html and "Question received" in html
    assert "What you need to do" in html and WHAT_IS_ASKED in html
    assert "Do this before" in html
    assert 'enctype="multipart/form-data"' in html
    assert "Sanne de Wit of Dienst Toeslagen handles your case." in html

    by_mail = await client.get(f"/cases/{world.mail_case_id}")
    assert "What you need to do" not in by_mail.text
    assert "Ours: you do not need to do anything" in by_mail.text
    # What the citizen wrote is shown as text, never as markup.
    assert "<script>alert" not in by_mail.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in by_mail.text
    assert re.search(r"Email\s*·", by_mail.text), "each message says its channel"
    assert MAIL_BODY.split("<")[0].strip() in by_mail.text

    someone_elses = await client.get(f"/cases/{world.other_case_id}")
    assert someone_elses.status_code == 404
    assert "This page does not exist, or it is not yours to see." in someone_elses.text
    not_an_id = await client.get("/cases/not-a-case")
    assert not_an_id.status_code == 404


async def test_the_document_sent_answers_the_request_and_the_case_goes_on(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world = await make_portal_world(database)
    await log_in_citizen(client, database, settings, world.citizen_email)
    page = await client.get(f"/cases/{world.waiting_case_id}")
    token = csrf_of(page.text)

    refused = await client.post(
        f"/cases/{world.waiting_case_id}/documents",
        data={"csrf_token": token},
        files={"file": ("notes.txt", b"just text", "text/plain")},
    )
    assert refused.status_code == 422
    assert "Dit bestand kunnen we niet aannemen" in refused.text

    sent = await client.post(
        f"/cases/{world.waiting_case_id}/documents",
        data={"csrf_token": token, "provides_information": "true"},
        files={"file": ("huurcontract.png", PNG, "image/png")},
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/cases/{world.waiting_case_id}?sent=1#what-to-do"
    after = await client.get(sent.headers["location"])
    assert "We hebben uw document ontvangen" in after.text
    assert "Wat u moet doen" not in after.text
    assert "huurcontract.png" in after.text
    async with database.session() as session:
        case = await session.get(Case, world.waiting_case_id)
        assert case is not None and case.status != "waiting_for_citizen"
        documents = (await session.exec(select(Document))).all()
        assert [d.filename for d in documents] == ["huurcontract.png"]


async def test_staff_log_in_with_totp_and_see_the_queue_which_is_logged(
    client: httpx.AsyncClient, database: Database
) -> None:
    world = await make_portal_world(database)
    assert (await client.get("/console")).headers["location"] == "/console/login?next=/console"
    page = await client.get("/console/login")
    wrong = await client.post(
        "/console/login",
        data={
            "csrf_token": csrf_of(page.text),
            "email": world.staff_email,
            "password": world.staff_password,
            "code": "000000",
        },
    )
    assert wrong.status_code == 401
    assert "E-mailadres, wachtwoord of code is niet goed." in wrong.text

    logged_in = await log_in_staff(client, world)
    assert logged_in.status_code == 303 and logged_in.headers["location"] == "/console"
    queue = await client.get("/console")
    assert queue.status_code == 200
    assert "Wachtende chats (1)" in queue.text
    assert "Onbeantwoorde berichten (1)" in queue.text
    assert "Vraag over huur" in queue.text and "Jan Jansen" in queue.text
    async with database.session() as session:
        logged = (
            await session.exec(
                select(AccessLogEntry).where(col(AccessLogEntry.actor_kind) == "staff")
            )
        ).all()
    assert {entry.case_id for entry in logged} == {world.chat_case_id, world.mail_case_id}
    assert all(entry.processing_activity_id is not None for entry in logged)

    # A member of staff is not a citizen: the portal sends them to the citizens' login.
    assert (await client.get("/my-cases")).status_code == 303


async def test_logging_out_ends_the_session(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world = await make_portal_world(database)
    await log_in_citizen(client, database, settings, world.citizen_email)
    page = await client.get("/my-cases")
    out = await client.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303 and out.headers["location"] == "/login?logged_out=1"
    assert (await client.get("/my-cases")).status_code == 303
    assert "U bent uitgelogd." in (await client.get(out.headers["location"])).text
    # A form posted after the session ended goes to the login page, then to the start.
    late = await client.post(
        f"/cases/{world.waiting_case_id}/documents",
        data={"csrf_token": csrf_of(page.text)},
        files={"file": ("scan.png", PNG, "image/png")},
    )
    assert late.status_code == 303 and late.headers["location"] == "/login?next=/"


async def test_every_form_post_without_its_csrf_token_gets_a_403_page(
    app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world = await make_portal_world(database)
    await log_in_citizen(client, database, settings, world.citizen_email)
    async with httpx.AsyncClient(transport=client._transport, base_url="http://hub.test") as staff:
        assert (await log_in_staff(staff, world)).status_code == 303
        forms = page_forms(app)
        paths = {served.path for served in forms}
        assert {"/login", "/login/code", "/logout", "/console/login"} <= paths
        for served in forms:
            target = concrete_path(served, world.path_values)
            browser = staff if audience(served.route) == "staff" else client
            for data in ({}, {"csrf_token": "0" * 64}):
                refused = await browser.post(target, data=data)
                assert refused.status_code == 403, target
                assert refused.headers["content-type"].startswith("text/html")
                assert "Het formulier is verlopen" in refused.text
    # A token from another browser does not fit this one's cookie.
    async with httpx.AsyncClient(transport=client._transport, base_url="http://hub.test") as other:
        foreign = csrf_of((await other.get("/login")).text)
    refused = await client.post("/login", data={"csrf_token": foreign, "address": "a@b.nl"})
    assert refused.status_code == 403
    assert (await client.get("/my-cases")).status_code == 200  # still logged in


async def test_every_page_has_the_security_headers(
    app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world = await make_portal_world(database)
    await log_in_citizen(client, database, settings, world.citizen_email)
    pages = html_pages(app)
    assert {"/login", "/my-cases", "/cases/{case_id}", "/console"} <= {p.path for p in pages}
    transport = client._transport
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://hub.test") as staff,
        httpx.AsyncClient(transport=transport, base_url="http://hub.test") as anyone,
    ):
        await log_in_staff(staff, world)
        browsers = {"staff": staff, "citizen": client, "anyone": anyone}
        for route in pages:
            path = concrete_path(route, world.path_values)
            browser = browsers[audience(route.route)]
            page = await browser.get(path)
            assert page.status_code == 200, path
            assert page.headers["content-type"].startswith("text/html"), path
            policy = page.headers["content-security-policy"]
            assert policy == CONTENT_SECURITY_POLICY and "unsafe-inline" not in policy
            assert "frame-ancestors 'none'" in policy
            assert page.headers["x-content-type-options"] == "nosniff"
            assert page.headers["referrer-policy"] == "same-origin"
            assert "<style" not in page.text and " style=" not in page.text
            assert "<script>" not in page.text
    assert (await client.get("/static/hub.css")).status_code == 200


async def test_cookies_are_secure_when_the_hub_is_served_on_https(
    database: Database, settings: Settings
) -> None:
    from asgi_lifespan import LifespanManager

    from hub.app import create_app

    secure = settings.model_copy(update={"base_url": "https://hub.example.nl"})
    application = create_app(secure, database=database)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="https://hub.test") as c:
            page = await c.get("/login")
    cookie = page.headers["set-cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie


async def test_the_language_switch_stays_on_this_site(client: httpx.AsyncClient) -> None:
    switched = await client.get("/language/en", params={"next": "/login"})
    assert switched.status_code == 303 and switched.headers["location"] == "/login"
    assert '<html lang="en">' in (await client.get("/login")).text
    for elsewhere in ("https://evil.example", "//evil.example", "/\\evil.example", "/\t/evil"):
        away = await client.get("/language/nl", params={"next": elsewhere})
        assert away.headers["location"] == "/"
    assert '<html lang="nl">' in (await client.get("/login")).text


async def test_pages_speak_the_citizens_language_until_the_browser_chooses(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.session() as session:
        await make_party(session, "Maria Pereira", email="maria@example.nl", language="en")
    await log_in_citizen(client, database, settings, "maria@example.nl")
    page = await client.get("/my-cases")
    assert '<html lang="en">' in page.text and "You have no cases yet." in page.text

    client.cookies.clear()
    await client.get("/language/nl")
    await log_in_citizen(client, database, settings, "maria@example.nl")
    assert '<html lang="nl">' in (await client.get("/my-cases")).text


async def test_staff_read_a_case_and_pick_up_its_chat(
    client: httpx.AsyncClient, database: Database
) -> None:
    world = await make_portal_world(database)
    async with database.session() as session:
        await make_agency(session, "rdw")
        elsewhere = await make_case(session, await make_party(session), agency_id="rdw")
    await log_in_staff(client, world)

    case = await client.get(f"/console/cases/{world.mail_case_id}")
    assert case.status_code == 200
    assert "Jan Jansen" in case.text and "Vraag over huur" in case.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in case.text
    assert (await client.get(f"/console/cases/{elsewhere.id}")).status_code == 404
    async with database.session() as session:
        reads = (
            await session.exec(
                select(AccessLogEntry).where(
                    AccessLogEntry.case_id == world.mail_case_id, AccessLogEntry.data == "case"
                )
            )
        ).all()
    assert len(reads) == 1 and reads[0].actor_kind == "staff"

    queue = await client.get("/console")
    pickup = re.search(r'action="(/console/chats/[0-9a-f-]+/pickup)"', queue.text)
    assert pickup is not None
    picked = await client.post(pickup.group(1), data={"csrf_token": csrf_of(queue.text)})
    assert picked.status_code == 303
    assert picked.headers["location"] == f"/console/cases/{world.chat_case_id}?picked=1"
    shown = await client.get(picked.headers["location"])
    assert "U hebt de chat opgepakt." in shown.text
    assert "Wachtende chat oppakken" not in shown.text
    assert "Wachtende chats (0)" in (await client.get("/console")).text
    again = await client.post(pickup.group(1), data={"csrf_token": csrf_of(queue.text)})
    assert again.status_code == 409 and "Dit kan nu niet" in again.text


async def test_a_citizen_sees_what_is_held_about_him_and_who_looked_at_it(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world = await make_portal_world(database)
    async with httpx.AsyncClient(transport=client._transport, base_url="http://hub.test") as staff:
        await log_in_staff(staff, world)
        await staff.get("/console")
    await log_in_citizen(client, database, settings, world.citizen_email)
    page = await client.get("/my-data")
    assert page.status_code == 200
    html = page.text
    assert "Wat wij van u weten" in html and "Jan Jansen" in html
    assert re.search(r"jan@example.nl —\s+gecontroleerd op", html)
    log = html[html.index('id="log-heading"') :]
    assert log.count("<tr>") == 1 + 2  # the header, and the two cases in the staff's queue
    assert "Sanne de Wit" in log and "Dienst Toeslagen" in log
    assert "Bekeken: een wachtende vraag" in log
    assert "vragen-beantwoorden purpose" in log


async def test_staff_ask_for_information_and_decide_and_the_citizen_sees_it(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world = await make_portal_world(database)
    transport = client._transport
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as staff:
        await log_in_staff(staff, world)
        view = await staff.get(f"/console/cases/{world.mail_case_id}")
        assert "Vraag de burger om" in view.text
        asked = await staff.post(
            f"/console/cases/{world.mail_case_id}/actions",
            data={
                "csrf_token": csrf_of(view.text),
                "kind": "request_information",
                "what": "Uw huurcontract",
                "deadline": "",
            },
        )
        assert asked.status_code == 303
        assert (
            "De burger is om de informatie gevraagd."
            in (await staff.get(asked.headers["location"])).text
        )

        await log_in_citizen(client, database, settings, world.citizen_email)
        mine = await client.get("/my-cases")
        todo = mine.text[mine.text.index('id="todo-heading"') : mine.text.index('id="running')]
        assert todo.count('<li class="card') == 2  # the waiting case, and this one now

        case_page = await client.get(f"/cases/{world.mail_case_id}")
        assert "Uw huurcontract" in case_page.text
        sent = await client.post(
            f"/cases/{world.mail_case_id}/documents",
            data={"csrf_token": csrf_of(case_page.text)},
            files={"file": ("huurcontract.png", PNG, "image/png")},
        )
        assert sent.status_code == 303

        view = await staff.get(f"/console/cases/{world.mail_case_id}")
        assert "huurcontract.png" in view.text
        refused = await staff.post(
            f"/console/cases/{world.mail_case_id}/actions",
            data={"csrf_token": csrf_of(view.text), "kind": "delete"},
        )
        assert refused.status_code == 422
        decided = await staff.post(
            f"/console/cases/{world.mail_case_id}/actions",
            data={"csrf_token": csrf_of(view.text), "kind": "decide", "result": "answered"},
        )
        assert decided.status_code == 303
        again = await staff.post(
            f"/console/cases/{world.mail_case_id}/actions",
            data={"csrf_token": csrf_of(view.text), "kind": "decide", "result": "answered"},
        )
        assert again.status_code == 409 and "Dit kan nu niet" in again.text

    case = await client.get(f"/cases/{world.mail_case_id}")
    assert "Wij hebben uw vraag beantwoord." in case.text
    assert "Niemand: uw zaak is afgerond" in case.text
