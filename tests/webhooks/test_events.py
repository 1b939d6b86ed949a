"""What the hub's domain events put in a webhook, URL checks outside test, and redirects."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import select

from hub.db import Database
from hub.errors import InvalidInput
from hub.events.service import Actor
from hub.messages.service import post_message
from hub.models import Notice, WebhookDelivery
from hub.webhooks.service import (
    CASE_MESSAGE_RECEIVED,
    NOTICE_STATUS_CHANGED,
    check_url,
    message_received,
    notice_status_changed,
    subscribe,
)
from hub.webhooks.worker import deliver_webhooks
from tests.builders import make_agency, make_case, make_party
from tests.webhooks.conftest import Receiver


async def test_inbound_replies_and_notice_statuses_become_events(
    database: Database, receiver: Receiver
) -> None:
    async with database.session() as session:
        await make_agency(session, "toeslagen")
        subscription = await subscribe(
            session,
            agency_id="toeslagen",
            url=receiver.url,
            event_types=[NOTICE_STATUS_CHANGED, CASE_MESSAGE_RECEIVED],
            allow_local_http=True,
        )
        receiver.secret = subscription.secret
        party = await make_party(session)
        case = await make_case(session, party)
        citizen = Actor(kind="citizen", id=str(party.id), name=party.name)
        reply = await post_message(
            session,
            case=case,
            channel="email",
            direction="inbound",
            author=citizen,
            body="Mijn BSN is 123456782, waar blijft mijn toeslag?",
            identified_by="email",
        )
        staff = Actor(kind="staff", id="s1", name="Sanne")
        answer = await post_message(
            session, case=case, channel="portal", direction="outbound", author=staff, body="Hoi"
        )
        # The reply was queued by post_message itself; an answer by staff queues nothing.
        assert await message_received(session, case, answer) == []
        notice = Notice(
            agency_id="toeslagen",
            topic_id=1,
            template_code="rent",
            dedupe_key="k1",
            status="delivered",
            channel="email",
        )
        await notice_status_changed(session, notice, base_url="https://hub.example")

    assert await deliver_webhooks(database) == 2
    by_type = {r.event["type"]: r.event for r in receiver.received}
    assert all(r.verified for r in receiver.received)
    received = by_type[CASE_MESSAGE_RECEIVED]
    assert received["subject"] == str(case.id)
    assert received["source"].startswith("urn:nld:interactionhub")
    assert received["dataref"] == f"/api/cases/{case.id}/messages"
    assert received["data"]["message_id"] == str(reply.id)
    assert received["data"]["case_reference"] == case.reference
    # What the citizen wrote stays in the hub, behind the access-checked API.
    assert "123456782" not in str(received)
    status = by_type[NOTICE_STATUS_CHANGED]
    assert status["subject"] == str(notice.id)
    assert status["data"]["status"] == "delivered"
    assert status["dataref"] == f"https://hub.example/api/notices/{notice.id}"


async def test_a_redirect_is_not_followed(
    database: Database, receiver: Receiver, outgoing: httpx.AsyncClient
) -> None:
    async with database.session() as session:
        await make_agency(session, "toeslagen")
        await subscribe(
            session,
            agency_id="toeslagen",
            url=receiver.url,
            event_types=[NOTICE_STATUS_CHANGED],
            allow_local_http=True,
        )
        await notice_status_changed(
            session,
            Notice(agency_id="toeslagen", topic_id=1, template_code="t", dedupe_key="k"),
        )
    receiver.script = [302]
    await deliver_webhooks(database, client=outgoing)
    async with database.session() as session:
        [delivery] = (await session.exec(select(WebhookDelivery))).all()
    assert delivery.status == "technical-failure"
    assert delivery.last_error == "HTTP 302"
    assert len(receiver.received) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hooks",
        "https://127.0.0.1/hooks",
        "https://localhost/hooks",
        "https://10.1.2.3/hooks",
        "https://[::1]/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://192.168.1.10/hooks",
    ],
)
def test_outside_test_no_local_or_private_addresses(url: str) -> None:
    with pytest.raises(InvalidInput):
        check_url(url, allow_local_http=False)


def test_outside_test_a_public_https_url_is_fine() -> None:
    url = "https://zaken.toeslagen.example/hooks?client=hub"
    assert check_url(url, allow_local_http=False) == url
