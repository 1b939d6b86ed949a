"""Webhooks repeated, reordered and delayed, from all three sources that push to the hub:
Twilio (status callbacks and inbound texts), the mail provider (inbound mail and bounces)
and the agencies' back-office systems (CloudEvents). Each is applied once, statuses only
move forward, and a repeat is answered 2xx so that the sender stops retrying.

The status and CloudEvent sequences are drawn by hypothesis (random orders, with repeats)
and checked against a model of what the hub promises; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlmodel import col, func, select

from hub.config import Settings
from hub.db import Database, utcnow
from hub.delivery.worker import deliver_once
from hub.events.service import Actor
from hub.messages.service import reply
from hub.models import Case, CaseEvent, Message, OutboxItem, ReviewItem
from hub.ports import AdapterRegistry, ChannelAdapter, DeliveryReport, Outbound
from tests.builders import bearer, key_for, make_agency, make_case, make_party
from tests.email.mails import DOMAIN, SECRET_KEY, citizen_mail, reply_to
from tests.fakes.twilio import TwilioStandIn

PUBLIC_URL = "https://hub.example.nl"
MAIL_SECRET = "provider-shared-secret-for-replays"
MAIL_HEADERS = {"Authorization": f"Bearer {MAIL_SECRET}", "Content-Type": "message/rfc822"}
REPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "mail" / "reports"
STATUS = "/api/sms/status"
INBOUND = "/api/sms/inbound"
PHONE = "+31612345678"
STAFF = Actor(kind="staff", id=str(uuid.uuid4()), name="Sanne de Wit", agency_id="toeslagen")
# Each example is a few HTTP calls on a real database: enough orders to find a slip, few
# enough to keep the module at a few seconds.
EXAMPLES = hypothesis_settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture
def twilio() -> Iterator[TwilioStandIn]:
    with TwilioStandIn() as stand_in:
        yield stand_in


@pytest.fixture
def settings(tmp_path: Path, twilio: TwilioStandIn) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path,
        run_worker=False,
        base_url=PUBLIC_URL,
        secret_key=SECRET_KEY,
        mail_from="Toeslagen <noreply@hub.test>",
        inbound_mail_domain=DOMAIN,
        inbound_mail_secret=SecretStr(MAIL_SECRET),
        rate_limit_per_minute=0,
        **twilio.settings(),
    )


@dataclass
class Texted:
    """A case whose party has a verified phone and a mail address, at agency toeslagen."""

    case: Case
    api_key: str


@pytest.fixture
async def texted(database: Database) -> Texted:
    async with database.session() as session:
        await make_agency(session, "toeslagen", activities=("toeslagen-aanvraag",))
        party = await make_party(session, "Fatima el Amrani", phone=PHONE, email="f@example.nl")
        case = await make_case(session, party, journey="huurtoeslag", agency_id="toeslagen")
    return Texted(case=case, api_key=await key_for(database, "toeslagen"))


# -- Twilio status callbacks -----------------------------------------------------------------

# Twilio's statuses, in the order they happen; the last two are final (one or the other).
RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "undelivered": 3}
HUB_STATUS = {"delivered": "delivered", "undelivered": "permanent-failure"}


def expected_statuses(sequence: list[str]) -> list[str]:
    """The hub status of the text after each callback of ``sequence``: forward only, the
    first final status for good."""
    shown, rank, final = [], -1, None
    for status in sequence:
        if final is None and RANK[status] > rank:
            rank = RANK[status]
            final = HUB_STATUS.get(status)
        shown.append(final or "sending")
    return shown


async def send_text(app: FastAPI, database: Database, case: Case, body: str) -> OutboxItem:
    """A staff reply by text, handed to the Twilio stand-in by the delivery worker."""
    async with database.session() as session:
        found = await session.get(Case, case.id)
        assert found is not None
        message = await reply(session, case=found, author=STAFF, body=body, channel="sms")
    await deliver_once(database, app.state.adapters, limit=100)
    async with database.session() as session:
        item = (
            await session.exec(
                select(OutboxItem).where(
                    OutboxItem.message_id == message.id, OutboxItem.channel == "sms"
                )
            )
        ).one()
    assert item.status == "sending" and item.provider_id, item
    return item


async def status_now(database: Database, item: OutboxItem) -> tuple[str, str | None]:
    async with database.session() as session:
        row = await session.get(OutboxItem, item.id)
        message = await session.get(Message, item.message_id)
    assert row is not None and message is not None
    return row.status, message.delivery_status


async def fallbacks_of(database: Database, body: str) -> int:
    """How many times the text went out again by mail (the next channel) after a failure."""
    async with database.session() as session:
        query = select(func.count()).where(OutboxItem.channel == "email", OutboxItem.body == body)
        return int((await session.exec(query)).one())


def callback_url(twilio: TwilioStandIn, body: str) -> str:
    """The status callback URL the hub gave Twilio with the text ``body``."""
    [url] = [form["StatusCallback"] for form in twilio.sent if form["Body"] == body]
    assert url.startswith(PUBLIC_URL + STATUS)
    return url


async def post_status(
    client: httpx.AsyncClient, twilio: TwilioStandIn, url: str, sid: str, status: str
) -> httpx.Response:
    """A status callback as Twilio posts it: to the URL it was given, signed for it."""
    error = 30003 if status == "undelivered" else None
    form = twilio.status_form(sid=sid, status=status, to=PHONE, error_code=error)
    path = url.removeprefix(PUBLIC_URL)
    return await twilio.post(client, path, form, public_url=PUBLIC_URL, signed_for=url)


@EXAMPLES
@given(sequence=st.lists(st.sampled_from(sorted(RANK)), min_size=1, max_size=8))
@example(sequence=["delivered"] * 5)
@example(sequence=["delivered", "sending", "queued"])  # delivered before sending
@example(sequence=["undelivered", "queued", "undelivered", "sent"])  # failed before queued
@example(sequence=["sent", "delivered", "sent", "delivered", "undelivered"])  # delayed
async def test_twilio_status_callbacks_in_any_order_only_move_forward_and_apply_once(
    app: FastAPI,
    client: httpx.AsyncClient,
    database: Database,
    twilio: TwilioStandIn,
    texted: Texted,
    sequence: list[str],
) -> None:
    body = f"Uw aanvraag is binnen ({uuid.uuid4().hex[:8]})."
    item = await send_text(app, database, texted.case, body)
    assert item.provider_id is not None
    for status, expected in zip(sequence, expected_statuses(sequence), strict=True):
        url = callback_url(twilio, body)
        response = await post_status(client, twilio, url, item.provider_id, status)
        assert response.status_code == 204, response.text
        assert await status_now(database, item) == (expected, expected), sequence
    failed = expected_statuses(sequence)[-1] == "permanent-failure"
    assert await fallbacks_of(database, body) == (1 if failed else 0)


class CallsBackEarly:
    """The SMS adapter, with Twilio's status callbacks arriving as soon as Twilio took the
    text: before the worker has recorded that it was handed over (as happens when the
    worker's transaction is slow, or the text is delivered at once)."""

    channel = "sms"

    def __init__(
        self,
        inner: ChannelAdapter,
        post: Callable[[str, str, str], Awaitable[httpx.Response]],
        statuses: list[str],
    ) -> None:
        # post(body, sid, status): Twilio's callback for the text ``body`` it took as ``sid``.
        self.inner = inner
        self.post = post
        self.statuses = statuses
        self.answers: list[int] = []

    async def send(self, message: Outbound) -> DeliveryReport:
        report = await self.inner.send(message)
        assert report.provider_id is not None
        for status in self.statuses:
            response = await self.post(message.body, report.provider_id, status)
            self.answers.append(response.status_code)
        return report


@pytest.mark.parametrize(
    ("statuses", "final"),
    [(["sent", "delivered"], "delivered"), (["undelivered"], "permanent-failure")],
)
async def test_a_status_that_arrives_before_the_worker_recorded_the_send_is_kept(
    app: FastAPI,
    client: httpx.AsyncClient,
    database: Database,
    twilio: TwilioStandIn,
    texted: Texted,
    statuses: list[str],
    final: str,
) -> None:
    async def post(body: str, sid: str, status: str) -> httpx.Response:
        return await post_status(client, twilio, callback_url(twilio, body), sid, status)

    early = CallsBackEarly(app.state.adapters.get("sms"), post, statuses)
    adapters = AdapterRegistry()
    adapters.register(early)
    body = "Uw toeslag is toegekend."
    async with database.session() as session:
        case = await session.get(Case, texted.case.id)
        assert case is not None
        message = await reply(session, case=case, author=STAFF, body=body, channel="sms")
    await deliver_once(database, adapters)
    assert early.answers == [204] * len(statuses)
    async with database.session() as session:
        item = (
            await session.exec(
                select(OutboxItem).where(
                    OutboxItem.message_id == message.id, OutboxItem.channel == "sms"
                )
            )
        ).one()
    assert await status_now(database, item) == (final, final)
    if final == "permanent-failure":  # Twilio's reason, not overwritten by the worker's record
        assert item.last_error is not None and "30003" in item.last_error
    assert await fallbacks_of(database, body) == (1 if final == "permanent-failure" else 0)


# -- Twilio inbound texts ----------------------------------------------------------------------


async def texts_on(database: Database, case: Case) -> list[Message]:
    async with database.session() as session:
        query = select(Message).where(
            Message.case_id == case.id, Message.channel == "sms", Message.direction == "inbound"
        )
        return list((await session.exec(query)).all())


async def test_an_inbound_text_posted_five_times_and_five_at_once_is_one_message(
    client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn, texted: Texted
) -> None:
    repeated = twilio.inbound_form(sender=PHONE, body="Ik stuur de stukken morgen.")
    together = twilio.inbound_form(sender=PHONE, body="En de loonstrook ook.")
    answers = [await twilio.post(client, INBOUND, repeated, public_url=PUBLIC_URL) for _ in "12345"]
    answers += await asyncio.gather(
        *(twilio.post(client, INBOUND, together, public_url=PUBLIC_URL) for _ in "12345")
    )
    assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers]
    assert sorted(m.body for m in await texts_on(database, texted.case)) == [
        "En de loonstrook ook.",
        "Ik stuur de stukken morgen.",
    ]


# -- inbound mail and bounces ------------------------------------------------------------------


async def post_mail(client: httpx.AsyncClient, raw: bytes) -> httpx.Response:
    return await client.post("/api/inbound/email", content=raw, headers=MAIL_HEADERS)


async def test_a_mail_posted_five_times_and_five_at_once_is_one_message_or_review_item(
    client: httpx.AsyncClient, database: Database, texted: Texted
) -> None:
    on_case = citizen_mail(to=reply_to(texted.case), message_id="<repeat@example.nl>")
    unmatched = citizen_mail(to=f"info@{DOMAIN}", message_id="<stray@example.nl>")
    answers = [await post_mail(client, on_case) for _ in "12345"]
    answers += await asyncio.gather(*(post_mail(client, unmatched) for _ in "12345"))
    assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers]
    outcomes = [a.json()["outcome"] for a in answers]
    assert outcomes[:5] == ["message"] + ["duplicate"] * 4
    assert sorted(outcomes[5:]) == ["duplicate"] * 4 + ["review"]
    async with database.session() as session:
        messages = (
            await session.exec(select(Message).where(Message.external_id == "<repeat@example.nl>"))
        ).all()
        items = (await session.exec(select(ReviewItem))).all()
    assert len(messages) == 1
    assert [i.external_id for i in items] == ["<stray@example.nl>"]


def bounce(name: str, message_id: bytes) -> bytes:
    """A delivery status notification from the fixtures about the mail ``message_id`` (each
    fixture has a Message-ID of its own, which a provider's repeat keeps)."""
    return (REPORTS / f"{name}.eml").read_bytes().replace(b"{MESSAGE_ID}", message_id)


async def test_bounces_repeated_and_reordered_fail_the_mail_once_and_fall_back_once(
    client: httpx.AsyncClient, database: Database, texted: Texted
) -> None:
    body = "Uw aanvraag is compleet."
    async with database.session() as session:
        message = Message(
            case_id=texted.case.id,
            party_id=texted.case.party_id,
            channel="email",
            direction="outbound",
            author_kind="staff",
            body=body,
            delivery_status="delivered",
        )
        session.add(message)
        await session.flush()
        outbox = OutboxItem(
            case_id=texted.case.id,
            party_id=texted.case.party_id,
            message_id=message.id,
            channel="email",
            recipient="f@example.nl",
            template="reply",
            body=body,
            status="delivered",
            provider="smtp",
            provider_id="<0f0f0f@hub.test>",
            meta={"tried": ["email"]},
        )
        session.add(outbox)
    failed = bounce("postfix_failed", b"0f0f0f@hub.test")
    delayed = bounce("postfix_delayed", b"0f0f0f@hub.test")
    # The failure five times (the provider's retries), a delay report that was held up, and
    # the failure again once more.
    for raw in (failed, failed, delayed, failed, failed, failed, delayed):
        answer = await post_mail(client, raw)
        assert answer.status_code == 200, answer.text
    async with database.session() as session:
        row = await session.get(OutboxItem, outbox.id)
        shown = await session.get(Message, message.id)
        texts = (
            await session.exec(
                select(OutboxItem).where(OutboxItem.channel == "sms", OutboxItem.body == body)
            )
        ).all()
        fallbacks = (
            await session.exec(
                select(CaseEvent).where(
                    CaseEvent.case_id == texted.case.id, CaseEvent.kind == "channel_fallback"
                )
            )
        ).all()
    assert row is not None and row.status == "permanent-failure"
    assert shown is not None and shown.delivery_status == "permanent-failure"
    assert len(texts) == 1
    assert len(fallbacks) == 1
    # Each distinct report is kept once with the delivery: the failure and the late delay.
    assert [r["action"] for r in row.meta["delivery_reports"]] == ["failed", "delayed"]


# -- agency CloudEvents ----------------------------------------------------------------------

# Events a minute apart, with the stage each needs (None: any stage while open) and the
# stage it leaves. The extension is allowed in any order by the journey: only the hub's
# order check keeps it from being applied after a later event.
CHAIN: tuple[tuple[str, dict[str, object], str | None, str], ...] = (
    ("stage-reached", {"stage": "assessment"}, "received", "assessment"),
    ("extended", {"reason": "Inkomen nog niet bekend", "days": 7}, None, ""),
    ("stage-reached", {"stage": "decision"}, "assessment", "decision"),
    ("decided", {"result": "granted"}, "decision", "decision"),
)
_runs = itertools.count(1)


def cloudevents(subject: str) -> list[dict[str, object]]:
    """The three events of ``CHAIN`` for one case, a minute apart."""
    run, start = next(_runs), utcnow()
    return [
        {
            "specversion": "1.0",
            "id": f"run-{run}-event-{number}",
            "source": "urn:nl:toeslagen:zaaksysteem",
            "type": f"nl.interactionhub.case.{kind}",
            "subject": subject,
            "time": (start + dt.timedelta(minutes=number)).isoformat(),
            "datacontenttype": "application/json",
            "data": data,
        }
        for number, (kind, data, _, _) in enumerate(CHAIN)
    ]


@EXAMPLES
@given(order=st.lists(st.sampled_from(range(len(CHAIN))), min_size=1, max_size=8))
@example(order=[0, 0, 0, 0, 0])
@example(order=[3, 2, 1, 0, 0, 1, 2, 3])  # the latest first
@example(order=[0, 2, 1, 3, 1])  # an extension delayed past a later event
async def test_cloudevents_in_any_order_move_the_case_once_and_only_forward(
    client: httpx.AsyncClient, database: Database, texted: Texted, order: list[int]
) -> None:
    async with database.session() as session:
        party = await make_party(session, "Anna")
        case = await make_case(session, party, journey="huurtoeslag", agency_id="toeslagen")
    events = cloudevents(str(case.id))
    # The model: a repeat of an applied event is a 200 duplicate; an event older than the
    # last applied one, or one the journey does not allow in the stage, a 409 that changes
    # nothing (and leaves the event free to be sent again).
    applied: list[int] = []
    stage, closed = "received", False
    for number in order:
        response = await client.post(
            "/api/cloudevents",
            content=json.dumps(events[number]),
            headers={**bearer(texted.api_key), "Content-Type": "application/cloudevents+json"},
        )
        _, _, needs, leaves = CHAIN[number]
        if number in applied:
            assert (response.status_code, response.json()["duplicate"]) == (200, True)
        elif (applied and number < max(applied)) or closed or needs not in (None, stage):
            assert response.status_code == 409, response.text
            assert response.headers["content-type"] == "application/problem+json"
        else:
            assert (response.status_code, response.json()["duplicate"]) == (200, False)
            applied.append(number)
            stage, closed = leaves or stage, CHAIN[number][0] == "decided"
    async with database.session() as session:
        moved = await session.get(Case, case.id)
        log = (
            await session.exec(
                select(CaseEvent)
                .where(CaseEvent.case_id == case.id, CaseEvent.kind == "backoffice_event")
                .order_by(col(CaseEvent.seq))
            )
        ).all()
    assert [e.payload["id"] for e in log] == [events[n]["id"] for n in applied]
    assert moved is not None
    assert (moved.stage, moved.status) == (stage, "closed" if closed else "open")


async def test_a_bounce_of_a_mail_sent_by_a_worker_that_died_before_recording_it_is_applied(
    app: FastAPI, client: httpx.AsyncClient, database: Database, texted: Texted
) -> None:
    """The server took the mail, and the worker died before it wrote down the Message-ID:
    the row is still "sending" without one when the bounce comes. The Message-ID is made from
    the row's id, so the bounce still finds it; the mail is not sent to the dead address
    again, and the bounce is not left for staff in the review queue."""
    body = "Uw aanvraag is compleet."
    async with database.session() as session:
        outbox = OutboxItem(
            case_id=texted.case.id,
            party_id=texted.case.party_id,
            channel="email",
            recipient="f@example.nl",
            template="reply",
            body=body,
            status="sending",
            attempts=0,
            claimed_until=utcnow() + dt.timedelta(seconds=60),
            meta={"tried": ["email"]},
        )
        session.add(outbox)
    message_id = f"{outbox.id.hex}@hub.test".encode()
    answers = [await post_mail(client, bounce("postfix_failed", message_id)) for _ in "12"]
    assert [a.status_code for a in answers] == [200, 200]
    assert [a.json()["outcome"] for a in answers] == ["delivery_status", "duplicate"]
    async with database.session() as session:
        row = await session.get(OutboxItem, outbox.id)
        items = (await session.exec(select(ReviewItem))).all()
        texts = (
            await session.exec(
                select(OutboxItem).where(OutboxItem.channel == "sms", OutboxItem.body == body)
            )
        ).all()
    assert row is not None and row.status == "permanent-failure"
    assert row.provider_id == f"<{outbox.id.hex}@hub.test>"
    assert items == []
    assert len(texts) == 1
    await deliver_once(database, app.state.adapters, limit=100)
    async with database.session() as session:
        after = await session.get(OutboxItem, outbox.id)
    assert after is not None and (after.status, after.attempts) == ("permanent-failure", 0)


async def test_cloudevents_sent_all_at_once_with_repeats_apply_each_once_in_time_order(
    client: httpx.AsyncClient, database: Database, texted: Texted
) -> None:
    events = cloudevents(str(texted.case.id))
    order = [3, 0, 2, 1, 0, 3, 1, 2, 0, 0]
    answers = await asyncio.gather(
        *(
            client.post(
                "/api/cloudevents",
                content=json.dumps(events[number]),
                headers={**bearer(texted.api_key), "Content-Type": "application/cloudevents+json"},
            )
            for number in order
        )
    )
    assert {a.status_code for a in answers} <= {200, 409}, [a.text for a in answers]
    async with database.session() as session:
        log = (
            await session.exec(
                select(CaseEvent)
                .where(CaseEvent.case_id == texted.case.id, CaseEvent.kind == "backoffice_event")
                .order_by(col(CaseEvent.seq))
            )
        ).all()
    applied = [e.payload["id"] for e in log]
    assert applied, "no event was applied"
    assert len(applied) == len(set(applied))  # each at most once
    assert applied == sorted(applied, key=[e["id"] for e in events].index)  # only forward
    fresh = [a for a in answers if a.status_code == 200 and not a.json()["duplicate"]]
    assert sorted(a.json()["id"] for a in fresh) == sorted(applied)
