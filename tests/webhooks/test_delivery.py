"""Delivering events: signed CloudEvents to a real local receiver, retries with backoff,
giving up visibly, 410, and no database connection held while waiting for a receiver."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import uuid

import httpx
import pytest

from hub.db import Database, utcnow
from hub.models import WebhookDelivery, WebhookSubscription
from hub.webhooks.service import CASE_MESSAGE_RECEIVED, NOTICE_STATUS_CHANGED, emit
from hub.webhooks.worker import MAX_ATTEMPTS, deliver_webhooks
from tests.builders import bearer, key_for, make_agency
from tests.webhooks.conftest import Receiver, make_due

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


async def subscribe(
    client: httpx.AsyncClient,
    database: Database,
    receiver: Receiver,
    *,
    event_types: tuple[str, ...] = (NOTICE_STATUS_CHANGED,),
) -> tuple[str, str]:
    """Agencies toeslagen and rdw; toeslagen subscribes the receiver. Returns both keys."""
    async with database.session() as session:
        await make_agency(session, "toeslagen")
        await make_agency(session, "rdw")
    key = await key_for(database, "toeslagen")
    answer = await client.post(
        "/api/webhook-subscriptions",
        json={"url": receiver.url, "event_types": list(event_types)},
        headers=bearer(key),
    )
    assert answer.status_code == 201, answer.text
    receiver.secret = answer.json()["secret"]
    return key, await key_for(database, "rdw")


async def emit_status(database: Database, agency_id: str = "toeslagen") -> uuid.UUID:
    notice_id = uuid.uuid4()
    async with database.session() as session:
        await emit(
            session,
            agency_id=agency_id,
            type=NOTICE_STATUS_CHANGED,
            subject=str(notice_id),
            data={"notice_id": str(notice_id), "status": "delivered", "channel": "email"},
            dataref=f"http://hub.test/api/notices/{notice_id}",
            base_url="http://hub.test",
        )
    return notice_id


async def only_delivery(database: Database) -> WebhookDelivery:
    async with database.session() as session:
        from sqlmodel import select

        rows = list((await session.exec(select(WebhookDelivery))).all())
    assert len(rows) == 1
    return rows[0]


async def test_a_signed_cloudevent_reaches_the_receiver(
    client: httpx.AsyncClient, database: Database, receiver: Receiver, outgoing: httpx.AsyncClient
) -> None:
    await subscribe(client, database, receiver)
    notice_id = await emit_status(database)
    # Not subscribed to this type, or another agency: nothing is queued.
    async with database.session() as session:
        assert (
            await emit(
                session, agency_id="toeslagen", type=CASE_MESSAGE_RECEIVED, subject="x", data={}
            )
            == []
        )
        assert (
            await emit(session, agency_id="rdw", type=NOTICE_STATUS_CHANGED, subject="x", data={})
            == []
        )

    assert await deliver_webhooks(database, client=outgoing) == 1

    [request] = receiver.received
    assert request.verified
    assert request.headers["content-type"].startswith("application/cloudevents+json")
    delivery = await only_delivery(database)
    assert request.headers["webhook-id"] == str(delivery.id)
    event = request.event
    assert event["specversion"] == "1.0"
    assert event["type"] == NOTICE_STATUS_CHANGED
    assert event["source"] == "urn:nld:interactionhub:hub.test"
    assert uuid.UUID(event["id"]).version == 4
    assert RFC3339_UTC.match(event["time"])
    assert event["subject"] == str(notice_id)
    assert event["datacontenttype"] == "application/json"
    assert event["dataref"] == f"http://hub.test/api/notices/{notice_id}"
    assert event["data"] == {"notice_id": str(notice_id), "status": "delivered", "channel": "email"}
    assert delivery.status == "delivered"
    assert delivery.attempts == 1
    # Nothing left to send.
    assert await deliver_webhooks(database, client=outgoing) == 0


async def test_a_tampered_body_fails_the_receivers_check(receiver: Receiver) -> None:
    """The receiver's check is real: it refuses a body changed after signing."""
    from hub.webhooks.signing import new_secret, signed_headers
    from tests.webhooks.conftest import verify

    secret = new_secret()
    headers = {
        k.lower(): v
        for k, v in signed_headers(
            secret, webhook_id="d1", timestamp=int(utcnow().timestamp()), body=b'{"a":1}'
        ).items()
    }
    assert verify(secret, headers, b'{"a":1}')
    assert not verify(secret, headers, b'{"a":2}')
    assert not verify(new_secret(), headers, b'{"a":1}')


async def test_a_500_is_retried_with_backoff_until_it_succeeds(
    client: httpx.AsyncClient, database: Database, receiver: Receiver, outgoing: httpx.AsyncClient
) -> None:
    await subscribe(client, database, receiver)
    await emit_status(database)
    receiver.script = [500, 503]

    before = utcnow()
    await deliver_webhooks(database, client=outgoing)
    first = await only_delivery(database)
    assert first.status == "sending"
    assert first.attempts == 1
    assert first.last_error == "HTTP 500"
    assert first.next_attempt_at >= before + dt.timedelta(minutes=2)
    # Not due yet: the backoff is respected.
    assert await deliver_webhooks(database, client=outgoing) == 0

    await make_due(database)
    before = utcnow()
    await deliver_webhooks(database, client=outgoing)
    second = await only_delivery(database)
    assert second.attempts == 2
    assert second.next_attempt_at >= before + dt.timedelta(minutes=4)

    await make_due(database)
    await deliver_webhooks(database, client=outgoing)
    done = await only_delivery(database)
    assert done.status == "delivered"
    assert done.attempts == 3
    assert done.last_error is None
    assert all(r.verified for r in receiver.received)
    # The same Webhook-Id on every attempt, so the receiver can drop duplicates.
    assert {r.headers["webhook-id"] for r in receiver.received} == {str(done.id)}


async def test_after_the_budget_it_fails_visibly_and_can_be_retried(
    client: httpx.AsyncClient, database: Database, receiver: Receiver, outgoing: httpx.AsyncClient
) -> None:
    key, other_key = await subscribe(client, database, receiver)
    await emit_status(database)
    receiver.script = [500] * MAX_ATTEMPTS
    for _ in range(MAX_ATTEMPTS):
        await make_due(database)
        assert await deliver_webhooks(database, client=outgoing) == 1
    failed = await only_delivery(database)
    assert failed.status == "technical-failure"
    assert failed.attempts == MAX_ATTEMPTS
    assert failed.last_error == "HTTP 500"
    assert await deliver_webhooks(database, client=outgoing) == 0

    listed = await client.get(
        "/api/webhook-deliveries", params={"status": "technical-failure"}, headers=bearer(key)
    )
    assert [d["id"] for d in listed.json()] == [str(failed.id)]
    assert listed.json()[0]["last_error"] == "HTTP 500"
    assert listed.json()[0]["event_type"] == NOTICE_STATUS_CHANGED
    assert receiver.secret not in listed.text
    delivered = await client.get(
        "/api/webhook-deliveries", params={"status": "delivered"}, headers=bearer(key)
    )
    assert delivered.json() == []

    # Another agency neither sees nor retries it.
    others = await client.get("/api/webhook-deliveries", headers=bearer(other_key))
    assert others.json() == []
    path = f"/api/webhook-deliveries/{failed.id}/retry"
    assert (await client.post(path, headers=bearer(other_key))).status_code == 404

    retried = await client.post(path, headers=bearer(key))
    assert retried.status_code == 200
    assert retried.json()["status"] == "pending"
    assert (await client.post(path, headers=bearer(key))).status_code == 409
    await deliver_webhooks(database, client=outgoing)
    assert (await only_delivery(database)).status == "delivered"


async def test_a_410_deactivates_the_subscription(
    client: httpx.AsyncClient, database: Database, receiver: Receiver, outgoing: httpx.AsyncClient
) -> None:
    key, _ = await subscribe(client, database, receiver)
    await emit_status(database)
    receiver.script = [410]
    await deliver_webhooks(database, client=outgoing)
    delivery = await only_delivery(database)
    assert delivery.status == "technical-failure"
    assert delivery.attempts == 1
    listed = await client.get("/api/webhook-subscriptions", headers=bearer(key))
    assert listed.json()[0]["active"] is False
    # No more events for it, and a retry is refused until the agency subscribes again.
    await emit_status(database)
    await only_delivery(database)
    retry = await client.post(f"/api/webhook-deliveries/{delivery.id}/retry", headers=bearer(key))
    assert retry.status_code == 409


async def test_a_refusing_4xx_fails_at_once_but_429_is_retried(
    client: httpx.AsyncClient, database: Database, receiver: Receiver, outgoing: httpx.AsyncClient
) -> None:
    await subscribe(client, database, receiver)
    await emit_status(database)
    receiver.script = [429, 400]
    await deliver_webhooks(database, client=outgoing)
    assert (await only_delivery(database)).status == "sending"
    await make_due(database)
    await deliver_webhooks(database, client=outgoing)
    delivery = await only_delivery(database)
    assert delivery.status == "technical-failure"
    assert delivery.attempts == 2
    assert delivery.last_error == "HTTP 400"


async def test_no_database_connection_is_held_while_the_receiver_is_slow(
    client: httpx.AsyncClient, database: Database, receiver: Receiver, outgoing: httpx.AsyncClient
) -> None:
    await subscribe(client, database, receiver)
    await emit_status(database)
    receiver.script = [1.5]
    sending = asyncio.create_task(deliver_webhooks(database, client=outgoing, timeout_seconds=0.5))
    for _ in range(100):
        if receiver.arrived.is_set():
            break
        await asyncio.sleep(0.02)
    assert receiver.arrived.is_set()
    # The claim is committed before the call, and no connection is checked out meanwhile.
    assert database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    in_flight = await only_delivery(database)
    assert in_flight.status == "sending"
    assert in_flight.claimed_until is not None
    await sending
    timed_out = await only_delivery(database)
    assert timed_out.status == "sending"
    assert timed_out.attempts == 1
    assert timed_out.claimed_until is None
    assert timed_out.last_error == "No answer within 0.5 seconds."


async def test_an_unreachable_receiver_is_retried(
    client: httpx.AsyncClient, database: Database, receiver: Receiver, outgoing: httpx.AsyncClient
) -> None:
    await subscribe(client, database, receiver)
    await emit_status(database)
    receiver.stop()
    await deliver_webhooks(database, client=outgoing)
    delivery = await only_delivery(database)
    assert delivery.status == "sending"
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("Could not connect")


async def test_the_secret_is_never_logged(
    client: httpx.AsyncClient,
    database: Database,
    receiver: Receiver,
    outgoing: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Everything the hub and its HTTP client log, at every level. (The SQLite driver logs
    # statement parameters at DEBUG, the secret among them: keep it above DEBUG in production.)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="hub")
    caplog.set_level(logging.DEBUG, logger="httpx")
    caplog.set_level(logging.DEBUG, logger="httpcore")
    key, _ = await subscribe(client, database, receiver)
    await emit_status(database)
    receiver.script = [500, 410]
    await deliver_webhooks(database, client=outgoing)
    await make_due(database)
    await deliver_webhooks(database, client=outgoing)
    await client.get("/api/webhook-deliveries", headers=bearer(key))
    assert any(r.name == "hub.webhooks" for r in caplog.records)
    secret_key = receiver.secret.removeprefix("whsec_")
    signatures = {r.headers["webhook-signature"] for r in receiver.received}
    for record in caplog.records:
        text = record.getMessage() + repr(record.args) + repr(record.__dict__)
        assert secret_key not in text
        assert not any(s in text for s in signatures)
    async with database.session() as session:
        subscription = await session.get(
            WebhookSubscription, (await only_delivery(database)).subscription_id
        )
        assert subscription is not None and not subscription.active


async def test_two_workers_never_post_the_same_delivery(
    client: httpx.AsyncClient, database: Database, receiver: Receiver, outgoing: httpx.AsyncClient
) -> None:
    await subscribe(client, database, receiver)
    for _ in range(6):
        await emit_status(database)
    tried = await asyncio.gather(
        deliver_webhooks(database, client=outgoing, limit=3),
        deliver_webhooks(database, client=outgoing, limit=3),
        deliver_webhooks(database, client=outgoing, limit=3),
    )
    assert sum(tried) == 6
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(ids) == len(set(ids)) == 6


async def test_a_crashed_workers_claim_expires(
    client: httpx.AsyncClient, database: Database, receiver: Receiver, outgoing: httpx.AsyncClient
) -> None:
    from hub.webhooks.worker import claim_deliveries

    await subscribe(client, database, receiver)
    await emit_status(database)
    # A worker claims the row and dies before posting it.
    assert len(await claim_deliveries(database, claim_seconds=60)) == 1
    assert await deliver_webhooks(database, client=outgoing) == 0
    async with database.session() as session:
        delivery = await session.get(WebhookDelivery, (await only_delivery(database)).id)
        assert delivery is not None
        delivery.claimed_until = utcnow() - dt.timedelta(seconds=1)
        session.add(delivery)
    assert await deliver_webhooks(database, client=outgoing) == 1
    assert (await only_delivery(database)).status == "delivered"
