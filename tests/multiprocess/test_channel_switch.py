"""The channel switch on the hub in production shape: two `hub serve` processes and two
`hub worker` processes on one PostgreSQL database and Redis, mail to a real SMTP server and
texts to the Twilio stand-in.

Jan stays on API process A, his caseworkers on API process B. Whatever one of them does
reaches the other's live socket through Redis, and what a worker does (a text that bounced
and went by mail instead) reaches the staff member's socket as well. Both workers compete
for the outbox, and each mail and text arrives exactly once. At the end the case's timeline
and thread read the same from either API process.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlmodel import col, select
from websockets.asyncio.client import connect

from hub.db import Database
from hub.migrations import upgrade_async
from hub.models import OutboxItem
from tests.builders import bearer, make_agency, make_party, token_for
from tests.conftest import POSTGRES_UP, REDIS_UP, REDIS_URL
from tests.email.sink import SmtpSink
from tests.fakes.twilio import TwilioStandIn
from tests.live.harness import LiveClient, quick_staff, ticket_for
from tests.multiprocess.processes import HubProcess, fresh_database, serve, worker
from tests.test_channel_switch import ALWAYS_OPEN, answer_to, eventually, text_of

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

if os.environ.get("CI") == "true" and not (POSTGRES_UP and REDIS_UP):
    raise RuntimeError(
        "CI=true but PostgreSQL or Redis is not reachable for the multi-process test"
    )
if not (POSTGRES_UP and REDIS_UP):
    pytest.skip("needs PostgreSQL and Redis", allow_module_level=True)

BASE_URL = "https://hub.example.nl"  # the public URL, as the proxy in front serves it
# Keys of its own: no other test uses this database number. Redis's publish channels are
# shared by all its databases, so the agency's code (which names its chat queue's channel)
# is one of this run's own too.
REDIS_DB = 12
AGENCY = f"toeslagen-{uuid.uuid4().hex[:8]}"
JAN = "jan@example.nl"
PHONE = "+31612345678"
# Each worker sends from an address and number of its own, so that the SMTP server and the
# Twilio stand-in can tell which of the two sent what.
WORKERS = {
    "worker-1": ("worker-1@hub.example.nl", "+3197010000001"),
    "worker-2": ("worker-2@hub.example.nl", "+3197010000002"),
}
BURST_MAILS = 30
BURST_TEXTS = 10


class HoldingSink(SmtpSink):
    """The test's SMTP server, noting which sender's mail it is holding at the gate."""

    held_from: set[str]

    def __init__(self) -> None:
        super().__init__()
        self.held_from = set()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.gate is not None and not self.gate.is_set():
            self.held_from.add(str(envelope.mail_from))
        return await super().handle_DATA(server, session, envelope)


@dataclass
class Deployment:
    citizen_side: HubProcess  # API process A
    staff_side: HubProcess  # API process B
    workers: list[HubProcess]
    database: Database
    inbound_mail_secret: str


@pytest.fixture
def twilio() -> Iterator[TwilioStandIn]:
    with TwilioStandIn(auth_token=secrets.token_urlsafe(32)) as stand_in:
        yield stand_in


@pytest.fixture
async def sink() -> AsyncIterator[HoldingSink]:
    server = HoldingSink()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def deployment(
    tmp_path: Path, sink: HoldingSink, twilio: TwilioStandIn
) -> AsyncIterator[Deployment]:
    redis_url = urlsplit(REDIS_URL)._replace(path=f"/{REDIS_DB}").geturl()
    async with fresh_database("multiprocess") as url:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("HUB_")},
            "HUB_ENVIRONMENT": "production",
            "HUB_DATABASE_URL": url,
            "HUB_REDIS_URL": redis_url,
            "HUB_SECRET_KEY": secrets.token_urlsafe(48),
            "HUB_BASE_URL": BASE_URL,
            "HUB_DATA_DIR": str(tmp_path / "data"),  # the shared volume of the document store
            "HUB_INBOUND_MAIL_SECRET": secrets.token_urlsafe(32),
            "HUB_SMTP_HOST": "127.0.0.1",
            "HUB_SMTP_PORT": str(sink.port),
            "HUB_SMTP_SECURITY": "none",
            "HUB_TWILIO_ACCOUNT_SID": twilio.account_sid,
            "HUB_TWILIO_AUTH_TOKEN": twilio.auth_token,
            "HUB_TWILIO_FROM_NUMBER": twilio.from_number,
            "HUB_TWILIO_API_BASE": twilio.url,
            "HUB_WORKER_INTERVAL_SECONDS": "0.05",
        }
        # What `hub migrate` does, without starting a process for it (tests/test_cli.py does).
        await upgrade_async(url)
        started = await asyncio.gather(
            serve(env, tmp_path, "api-a"),
            serve(env, tmp_path, "api-b"),
            *(
                worker(
                    {**env, "HUB_MAIL_FROM": f"Hub <{address}>", "HUB_TWILIO_FROM_NUMBER": number},
                    tmp_path,
                    name,
                )
                for name, (address, number) in WORKERS.items()
            ),
            return_exceptions=True,
        )
        processes = [p for p in started if isinstance(p, HubProcess)]
        database = Database(url)
        try:
            for failure in started:
                if isinstance(failure, BaseException):
                    raise failure
            a, b, *workers = processes
            yield Deployment(a, b, workers, database, env["HUB_INBOUND_MAIL_SECRET"])
        finally:
            await database.dispose()
            codes = [await process.stop() for process in processes]
        # uvicorn ends by raising the SIGTERM it caught again, once it has shut down.
        for process, code in zip(processes, codes, strict=True):
            shown = f"{process.name} ended with {code}:\n{process.output()}"
            if process.port is None:
                assert code == 0, shown
            else:
                assert code in (0, -signal.SIGTERM), shown
                assert "Application shutdown complete." in process.output(), shown
            assert "Traceback" not in process.output(), f"{process.name}:\n{process.output()}"


async def connect_live(hub: HubProcess, http: httpx.AsyncClient, token: str) -> LiveClient:
    """A live socket to ``hub``, authenticated with a ticket from that same process."""
    ticket = await ticket_for(http, token)
    client = LiveClient(await connect(hub.ws_url, open_timeout=5))
    await client.send(type="auth", ticket=ticket)
    await client.expect("ready")
    return client


def message_ids(sink: SmtpSink) -> Counter[uuid.UUID]:
    """How often each outbox row reached the SMTP server (its id is in the Message-ID)."""
    seen: Counter[uuid.UUID] = Counter()
    for received in sink.received:
        found = re.fullmatch(r"<([0-9a-f]{32})@[^>]+>", str(received.message["Message-ID"]))
        assert found, received.message["Message-ID"]
        seen[uuid.UUID(found.group(1))] += 1
    return seen


async def outbox(database: Database) -> list[OutboxItem]:
    async with database.session() as session:
        return list(
            (await session.exec(select(OutboxItem).order_by(col(OutboxItem.created_at)))).all()
        )


async def test_a_citizen_and_staff_on_different_processes_switch_channels_with_two_workers(
    deployment: Deployment, sink: HoldingSink, twilio: TwilioStandIn
) -> None:
    a, b, database = deployment.citizen_side, deployment.staff_side, deployment.database
    async with database.session() as session:
        agency = await make_agency(
            session, AGENCY, activities=("vragen-beantwoorden", "balie-zoeken")
        )
        agency.opening_hours = ALWAYS_OPEN
        session.add(agency)
        await make_party(session, "Jan Jansen", email=JAN, phone=PHONE, preferred_channel="email")
        sanne = await quick_staff(session, AGENCY, "Sanne de Wit")
        ahmed = await quick_staff(session, AGENCY, "Ahmed El Amrani")
    sanne_token = await token_for(database, "staff", sanne.id)
    ahmed_token = await token_for(database, "staff", ahmed.id)

    async with (
        httpx.AsyncClient(base_url=a.url, timeout=10) as at_a,
        httpx.AsyncClient(base_url=b.url, timeout=10) as at_b,
    ):
        # Jan logs in on A with a code that one of the workers mails him.
        asked = await at_a.post("/api/auth/citizen/code", json={"address": JAN})
        assert asked.status_code == 202, asked.text
        code_mail = await eventually(lambda: _mail_to(sink, JAN, "", 0))
        code = re.search(r"\b(\d{6})\b", text_of(code_mail))
        assert code is not None
        login = await at_a.post(
            "/api/auth/citizen/session", json={"address": JAN, "code": code.group(1)}
        )
        assert login.status_code == 200, login.text
        jan_token = login.json()["token"]

        # Sanne, on B, watches her agency's chat queue; Jan starts a chat on A.
        staff = await connect_live(b, at_b, sanne_token)
        await staff.send(type="watch_queue")
        await staff.expect("watching_queue")
        started = await at_a.post(
            "/api/chats",
            json={"agency_id": AGENCY, "text": "Mijn toeslag is deze maand niet betaald."},
            headers=bearer(jan_token),
        )
        assert started.status_code == 201, started.text
        chat = started.json()["chat"]
        case_id = chat["case_id"]
        await staff.expect("queue_changed", conversation_id=chat["id"])  # A → B

        citizen = await connect_live(a, at_a, jan_token)
        await citizen.follow(case_id, after=started.json()["message"]["seq"])
        followed = await staff.follow(case_id, after=0)
        assert followed["citizen_online"] is True  # Jan's presence on A, read on B
        picked = await at_b.post(f"/api/chats/{chat['id']}/pickup", headers=bearer(sanne_token))
        assert picked.status_code == 200, picked.text
        told = await citizen.event("chat_picked_up")  # B → A
        assert told["payload"]["staff_name"] == "Sanne de Wit"

        await citizen.send(type="message", case_id=case_id, body="Ik wacht even.", ref="c1")
        await citizen.expect("ack", ref="c1")
        assert (await staff.event("message", body="Ik wacht even."))["actor_kind"] == "citizen"
        await staff.send(type="message", case_id=case_id, body="Ik kijk het na.", ref="s1")
        await staff.expect("ack", ref="s1")
        await citizen.event("message", body="Ik kijk het na.")  # B → A, in the chat

        # Jan closes the window; B hears he is gone, so Sanne's next answer goes by mail.
        await citizen.close()
        await staff.expect("presence", state="offline")
        question = "Goedemiddag Jan, is uw rekeningnummer veranderd?"
        answered = await at_b.post(
            f"/api/chats/{chat['id']}/messages",
            json={"text": question},
            headers=bearer(sanne_token),
        )
        assert answered.status_code == 201, answered.text
        reply_mail = await eventually(lambda: _mail_to(sink, JAN, "rekeningnummer", 0))

        # Jan answers the mail; his provider posts it to A. Sanne sees it on B at once.
        posted = await at_a.post(
            "/api/inbound/email",
            content=answer_to(reply_mail, "Ja, sinds 1 november heb ik een nieuw nummer."),
            headers={
                "Authorization": f"Bearer {deployment.inbound_mail_secret}",
                "Content-Type": "message/rfc822",
            },
        )
        assert posted.status_code in (200, 201, 202), posted.text
        by_mail = await staff.event("message", channel="email", direction="inbound")
        assert by_mail["payload"]["body"].strip() == "Ja, sinds 1 november heb ik een nieuw nummer."

        # Later he texts a question, which Twilio posts to A.
        form = twilio.inbound_form(sender=PHONE, body="Wanneer krijg ik het geld?")
        texted = await twilio.post(at_a, "/api/sms/inbound", form, public_url=BASE_URL)
        assert texted.status_code == 200, texted.text
        await staff.event("message", channel="sms", body="Wanneer krijg ik het geld?")

        # Sanne answers on his channel, SMS; Twilio refuses the number this once, and the
        # worker that tried sends it by mail instead and says so on B's socket.
        twilio.fail_next(400, code=21211)
        by_text = await at_b.post(
            f"/api/cases/{case_id}/messages",
            json={"body": "U krijgt het geld binnen vijf werkdagen."},
            headers=bearer(sanne_token),
        )
        assert by_text.status_code == 201, by_text.text
        assert by_text.json()["channel"] == "sms"
        fallback = await staff.event("channel_fallback", within=15)  # a worker → B
        assert fallback["payload"] == {"from": "sms", "to": "email", "reason": "bounced"}
        await eventually(lambda: _mail_to(sink, JAN, "vijf werkdagen", 0))

        # A text that goes through; Twilio's status callback reaches A.
        sent = await at_b.post(
            f"/api/cases/{case_id}/messages",
            json={"body": "Het geld is vandaag overgemaakt.", "channel": "sms"},
            headers=bearer(sanne_token),
        )
        assert sent.status_code == 201, sent.text
        sid = await _provider_id(database, "Het geld is vandaag overgemaakt.")
        status = await twilio.post(
            at_a,
            "/api/sms/status",
            twilio.status_form(sid=sid, status="delivered", to=PHONE),
            public_url=BASE_URL,
        )
        assert status.status_code == 204, status.text

        # Then he comes to the counter, where Ahmed (on B) finds him and checks his passport.
        found = await at_b.post(
            "/api/desk/search",
            json={"case_reference": chat["case_reference"], "purpose": "balie-zoeken"},
            headers=bearer(ahmed_token),
        )
        assert found.status_code == 200, found.text
        visit = await at_b.post(
            f"/api/desk/cases/{case_id}/visits",
            json={"topic": "Betaling toeslag", "identity_document": "passport"},
            headers=bearer(ahmed_token),
        )
        assert visit.status_code == 201, visit.text

        # A burst while the mail server holds every mail: each worker's round takes what is
        # due and waits at the server, so the other takes the next rows; when the server
        # lets go, both claim from what is left at the same moment.
        await eventually(lambda: _settled(sink))
        sink.gate = asyncio.Event()
        for n in range(BURST_MAILS + BURST_TEXTS):
            channel = "email" if n < BURST_MAILS else "sms"
            burst = await at_b.post(
                f"/api/cases/{case_id}/messages",
                json={"body": f"Bericht {n + 1} van de reeks.", "channel": channel},
                headers=bearer(sanne_token),
            )
            assert burst.status_code == 201, burst.text
        await eventually(lambda: len(sink.held_from) == len(WORKERS), within=20)
        sink.gate.set()

        rows = await _all_sent(database, within=30)
        await staff.close()

        # Every mail and text left the outbox once, and both workers sent mail. Beside the
        # burst: the login code, the case's confirmation, the answer while Jan was away and
        # the refused text sent again by mail; the refused text and the one that went.
        mails = [row for row in rows if row.channel == "email"]
        texts = [row for row in rows if row.channel == "sms"]
        assert len(mails) == BURST_MAILS + 4 and len(texts) == BURST_TEXTS + 2
        assert {row.status for row in mails} == {"delivered"}
        assert message_ids(sink) == Counter({row.id: 1 for row in mails})
        assert {r.sender for r in sink.received} == {address for address, _ in WORKERS.values()}
        handed_over = [row for row in texts if row.provider_id is not None]
        assert len(handed_over) == BURST_TEXTS + 1
        assert len({row.provider_id for row in handed_over}) == len(handed_over)
        accepted = Counter((form["To"], form["Body"]) for form in twilio.sent)
        assert accepted == Counter((row.recipient, row.body) for row in handed_over)
        assert set(accepted.values()) == {1}
        assert {form["From"] for form in twilio.sent} <= {n for _, n in WORKERS.values()}

        # The timeline and the thread read the same from either process, for Jan and staff.
        for token in (jan_token, sanne_token):
            for path in (
                f"/api/cases/{case_id}/events?limit=500",
                f"/api/cases/{case_id}/messages",
            ):
                from_a = await at_a.get(path, headers=bearer(token))
                from_b = await at_b.get(path, headers=bearer(token))
                assert from_a.status_code == from_b.status_code == 200, from_a.text
                assert from_a.json() == from_b.json()
                assert from_a.json(), path
        thread = (
            await at_a.get(f"/api/cases/{case_id}/messages", headers=bearer(jan_token))
        ).json()

    contacts = [
        (m["channel"], m["direction"], m["delivery_status"])
        for m in thread
        if m["direction"] in ("inbound", "outbound") and not m["body"].startswith("Bericht ")
    ]
    # The text Twilio refused reached Jan by mail, and the thread says so.
    refused = contacts.pop(6)
    assert refused == ("email", "outbound", "delivered")
    assert contacts == [
        ("webchat", "inbound", None),
        ("webchat", "inbound", None),
        ("webchat", "outbound", "delivered"),
        ("email", "outbound", "delivered"),
        ("email", "inbound", None),
        ("sms", "inbound", None),
        ("sms", "outbound", "delivered"),
        ("counter", "inbound", None),
    ], contacts


def _mail_to(sink: SmtpSink, address: str, containing: str, index: int) -> Any:
    found = [
        r.message
        for r in sink.received
        if address in r.recipients and containing in text_of(r.message)
    ]
    return found[index] if len(found) > index else None


async def _provider_id(database: Database, body: str, within: float = 15) -> str:
    """The Twilio SID of the text with ``body``, once a worker has handed it over."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        async with database.session() as session:
            found = await session.exec(
                select(OutboxItem.provider_id).where(
                    OutboxItem.body == body, col(OutboxItem.provider_id).is_not(None)
                )
            )
            sid = found.first()
        if sid:
            return sid
        await asyncio.sleep(0.05)
    raise AssertionError(f"no text {body!r} was handed to Twilio")


def _settled(sink: SmtpSink) -> bool:
    return sink.receiving == len(sink.received)


async def _all_sent(database: Database, *, within: float) -> list[OutboxItem]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        rows = await outbox(database)
        if all(
            row.status != "pending" and (row.status != "sending" or row.provider_id) for row in rows
        ):
            return rows
        if loop.time() > deadline:
            raise AssertionError(f"not all sent: {Counter(r.status for r in rows)}")
        await asyncio.sleep(0.1)
