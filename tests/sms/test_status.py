"""Twilio's status callbacks: signed, applied once, never backwards, a failure falls back."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import select

from hub.db import Database
from hub.delivery.worker import deliver_once
from hub.models import CaseEvent, Message, OutboxItem
from tests.fakes.twilio import TwilioStandIn
from tests.sms.conftest import PUBLIC_URL, post_webhook
from tests.sms.test_outbound import PHONE, outbox, texted_case

STATUS = "/api/sms/status"


@pytest.fixture
async def text(app: FastAPI, database: Database) -> OutboxItem:
    """A reply by text that Twilio accepted: its outbox row, status ``sending``."""
    case = await texted_case(database)
    await deliver_once(database, app.state.adapters)
    [item] = await outbox(database, case)
    assert item.status == "sending" and item.provider_id
    return item


async def current(database: Database, item: OutboxItem) -> tuple[str, str | None]:
    """The outbox row's status and its message's delivery status, as stored now."""
    async with database.session() as session:
        row = await session.get(OutboxItem, item.id)
        message = await session.get(Message, item.message_id)
    assert row is not None and message is not None
    return row.status, message.delivery_status


async def callback(
    client: httpx.AsyncClient, twilio: TwilioStandIn, item: OutboxItem, status: str, **extra: int
) -> httpx.Response:
    assert item.provider_id is not None
    form = twilio.status_form(sid=item.provider_id, status=status, to=PHONE, **extra)
    response = await post_webhook(client, twilio, STATUS, form)
    assert response.status_code == 204, response.text
    return response


async def test_delivered_moves_the_outbox_row_and_the_message(
    client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn, text: OutboxItem
) -> None:
    await callback(client, twilio, text, "sent")
    assert await current(database, text) == ("sending", "sending")

    await callback(client, twilio, text, "delivered")
    assert await current(database, text) == ("delivered", "delivered")


async def test_a_late_status_never_moves_it_back(
    client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn, text: OutboxItem
) -> None:
    await callback(client, twilio, text, "delivered")
    await callback(client, twilio, text, "sent")
    await callback(client, twilio, text, "queued")
    assert await current(database, text) == ("delivered", "delivered")


async def test_an_earlier_status_after_a_later_one_is_ignored_while_sending(
    client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn, text: OutboxItem
) -> None:
    await callback(client, twilio, text, "sent")
    await callback(client, twilio, text, "sending")
    async with database.session() as session:
        row = await session.get(OutboxItem, text.id)
    assert row is not None and row.meta["twilio_status"] == "sent"


async def test_undelivered_is_a_permanent_failure_that_falls_back_once_however_often_told(
    client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn, text: OutboxItem
) -> None:
    await callback(client, twilio, text, "undelivered", error_code=30003)
    await callback(client, twilio, text, "undelivered", error_code=30003)
    await callback(client, twilio, text, "failed", error_code=30005)

    assert await current(database, text) == ("permanent-failure", "permanent-failure")
    async with database.session() as session:
        row = await session.get(OutboxItem, text.id)
        fallbacks = (
            await session.exec(select(CaseEvent).where(CaseEvent.kind == "channel_fallback"))
        ).all()
        rows = (await session.exec(select(OutboxItem).where(OutboxItem.id != text.id))).all()
    assert row is not None and row.last_error is not None
    assert "30003" in row.last_error and "unreachable handset" in row.last_error
    assert [e.payload["to"] for e in fallbacks] == ["email"]
    assert [(r.channel, r.body) for r in rows if r.template == "reply"] == [("email", text.body)]


async def test_a_callback_for_an_unknown_text_changes_nothing(
    client: httpx.AsyncClient, twilio: TwilioStandIn
) -> None:
    form = twilio.status_form(sid="SM" + "f" * 32, status="delivered")
    assert (await post_webhook(client, twilio, STATUS, form)).status_code == 204


async def test_a_callback_without_a_sid_is_refused_clearly(
    client: httpx.AsyncClient, twilio: TwilioStandIn
) -> None:
    form = {"MessageStatus": "delivered"}
    response = await post_webhook(client, twilio, STATUS, form)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "MessageSid" in response.json()["detail"]


# -- signatures ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [STATUS, "/api/sms/inbound"])
async def test_a_missing_or_wrong_signature_is_refused_and_logged_without_the_body(
    client: httpx.AsyncClient,
    twilio: TwilioStandIn,
    caplog: pytest.LogCaptureFixture,
    path: str,
) -> None:
    form = twilio.inbound_form(sender=PHONE, body="Mijn BSN is 999990019")
    caplog.set_level(logging.WARNING, logger="channels.sms")

    missing = await client.post(path, data=form)
    forged = await client.post(path, data=form, headers={"X-Twilio-Signature": "bm90IGl0"})
    other_key = await client.post(
        path,
        data=form,
        headers=TwilioStandIn(auth_token="another-account-token").signature_headers(
            PUBLIC_URL + path, form
        ),
    )

    for response in (missing, forged, other_key):
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["title"] == "Forbidden"
    assert len(caplog.records) == 3
    assert "no signature" in caplog.records[0].getMessage()
    assert "wrong signature" in caplog.records[1].getMessage()
    assert all("999990019" not in r.getMessage() for r in caplog.records)


async def test_the_signature_is_checked_against_the_public_url_not_the_request_host(
    client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn, text: OutboxItem
) -> None:
    assert text.provider_id is not None
    form = twilio.status_form(sid=text.provider_id, status="delivered")

    # The client reaches the hub as http://hub.test; Twilio called https://hub.example.nl.
    as_seen = await post_webhook(
        client, twilio, STATUS, form, signed_for=f"http://hub.test{STATUS}"
    )
    assert as_seen.status_code == 403
    assert await current(database, text) == ("sending", "sending")

    as_public = await post_webhook(client, twilio, STATUS, form)
    assert as_public.status_code == 204
    assert await current(database, text) == ("delivered", "delivered")


async def test_a_changed_field_breaks_the_signature(
    client: httpx.AsyncClient, twilio: TwilioStandIn
) -> None:
    form = twilio.status_form(sid="SM" + "a" * 32, status="delivered")
    headers = twilio.signature_headers(PUBLIC_URL + STATUS, form)
    form["MessageStatus"] = "failed"
    assert (await client.post(STATUS, data=form, headers=headers)).status_code == 403


async def test_a_shared_key_signature_is_refused_as_the_hub_has_no_key_for_it(
    client: httpx.AsyncClient, twilio: TwilioStandIn
) -> None:
    form = twilio.status_form(sid="SM" + "a" * 32, status="delivered")
    headers = twilio.signature_headers(PUBLIC_URL + STATUS, form)
    headers["X-Twilio-Webhooks-Signature-Settings"] = "key=abc,algorithm=HMAC_SHA256"
    response = await client.post(STATUS, data=form, headers=headers)
    assert response.status_code == 403
    assert "shared key" in response.json()["detail"]


async def test_an_oversized_webhook_is_refused_before_it_is_read(
    client: httpx.AsyncClient, twilio: TwilioStandIn
) -> None:
    form = twilio.inbound_form(sender=PHONE, body="x" * 70_000)
    response = await post_webhook(client, twilio, "/api/sms/inbound", form)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


async def test_callbacks_arriving_together_still_end_delivered(
    client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn, text: OutboxItem
) -> None:
    assert text.provider_id is not None
    forms = [
        twilio.status_form(sid=text.provider_id, status=status)
        for status in ("sent", "delivered", "sent", "delivered", "queued")
    ]
    responses = await asyncio.gather(*(post_webhook(client, twilio, STATUS, f) for f in forms))
    assert [r.status_code for r in responses] == [204] * 5
    assert await current(database, text) == ("delivered", "delivered")
