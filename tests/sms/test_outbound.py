"""Texts out through the delivery worker and the twilio SDK, to the local Twilio stand-in."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlmodel import col, select

from channels.sms.adapter import TwilioSmsAdapter
from channels.sms.wiring import TwilioSettingsMissing, adapters
from hub.config import Settings
from hub.db import Database, utcnow
from hub.delivery.worker import deliver_once
from hub.errors import InvalidInput
from hub.events.service import Actor
from hub.messages.service import reply
from hub.models import Case, CaseEvent, DigitalAddress, Message, OutboxItem
from hub.ports import AdapterRegistry, Outbound
from tests.builders import make_agency, make_case, make_party
from tests.fakes.twilio import TwilioStandIn
from tests.sms.conftest import PUBLIC_URL

PHONE = "+31612345678"
STAFF = Actor(kind="staff", id=str(uuid.uuid4()), name="Sanne de Wit", agency_id="toeslagen")


async def texted_case(database: Database, *, body: str = "Uw aanvraag is binnen.") -> Case:
    """A case whose party has a verified phone (and mail and post), with a staff reply by
    text waiting in the outbox."""
    async with database.session() as session:
        await make_agency(session)
        party = await make_party(
            session,
            phone=PHONE,
            email="burger@example.nl",
            postal_address="Dorpsstraat 1\n1234 AB Ons Dorp",
        )
        case = await make_case(session, party)
        await reply(session, case=case, author=STAFF, body=body, channel="sms")
    return case


async def outbox(database: Database, case: Case) -> list[OutboxItem]:
    """The case's deliveries since the reply by text, in order (the notice that the case
    was opened went before it)."""
    async with database.session() as session:
        query = (
            select(OutboxItem)
            .where(OutboxItem.case_id == case.id, OutboxItem.template != "case_started")
            .order_by(col(OutboxItem.created_at))
        )
        return list((await session.exec(query)).all())


def twilio_adapter(twilio: TwilioStandIn, **changes: Any) -> TwilioSmsAdapter:
    """The adapter as the hub builds it for the stand-in, with ``changes`` to its arguments."""
    arguments: dict[str, Any] = {
        "account_sid": twilio.account_sid,
        "auth_token": twilio.auth_token,
        "sender": twilio.from_number,
        "base_url": PUBLIC_URL,
        "api_base": twilio.url,
        **changes,
    }
    return TwilioSmsAdapter(**arguments)


async def test_the_sdk_takes_twilio_over_from_the_development_outbox(app: FastAPI) -> None:
    assert isinstance(app.state.adapters.get("sms"), TwilioSmsAdapter)


async def test_a_reply_by_text_reaches_twilio_with_number_body_and_status_callback(
    app: FastAPI, database: Database, twilio: TwilioStandIn
) -> None:
    case = await texted_case(database, body="Uw aanvraag is binnen. Wij beslissen vóór 1 mei €")

    await deliver_once(database, app.state.adapters)

    [request] = twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    assert request.authorized
    assert request.form == {
        "To": PHONE,
        "From": twilio.from_number,
        "Body": "Uw aanvraag is binnen. Wij beslissen vóór 1 mei €",
        "StatusCallback": request.form["StatusCallback"],
    }
    [item] = await outbox(database, case)
    # The callback URL names the outbox row: a status may come before the MessageSid is kept.
    assert request.form["StatusCallback"] == f"{PUBLIC_URL}/api/sms/status?outbox={item.id}"
    assert item.status == "sending"  # accepted; the final status comes by callback
    assert item.provider == "twilio"
    assert item.provider_id is not None and item.provider_id.startswith("SM")
    async with database.session() as session:
        message = await session.get(Message, item.message_id)
    assert message is not None and message.delivery_status == "sending"


async def test_an_accepted_text_is_not_sent_again_by_the_next_round(
    app: FastAPI, database: Database, twilio: TwilioStandIn
) -> None:
    await texted_case(database)
    await deliver_once(database, app.state.adapters)
    await deliver_once(database, app.state.adapters)
    assert len(twilio.sent) == 1


async def test_an_invalid_to_number_bounces_to_the_next_channel(
    app: FastAPI, database: Database, twilio: TwilioStandIn
) -> None:
    case = await texted_case(database)
    twilio.fail_next(400, code=21211, message="The 'To' number is not a valid phone number.")

    await deliver_once(database, app.state.adapters)

    first, fallback = await outbox(database, case)
    assert first.status == "permanent-failure"
    assert first.last_error is not None and "21211" in first.last_error
    assert (fallback.channel, fallback.recipient) == ("email", "burger@example.nl")
    assert fallback.body == first.body
    async with database.session() as session:
        events = (
            await session.exec(select(CaseEvent).where(CaseEvent.kind == "channel_fallback"))
        ).all()
    assert [e.payload for e in events] == [{"from": "sms", "to": "email", "reason": "bounced"}]


@pytest.mark.parametrize(("status", "code"), [(503, None), (500, 20500), (429, 20429)])
async def test_a_busy_or_broken_twilio_is_retried_later(
    app: FastAPI, database: Database, twilio: TwilioStandIn, status: int, code: int | None
) -> None:
    case = await texted_case(database)
    twilio.fail_next(status, code=code)

    await deliver_once(database, app.state.adapters)

    [item] = await outbox(database, case)
    assert item.status == "sending"
    assert item.provider_id is None
    assert item.last_error is not None and f"HTTP {status}" in item.last_error
    assert item.next_attempt_at > utcnow()
    assert await deliver_once(database, app.state.adapters) == 0  # not due yet

    async with database.session() as session:
        row = await session.get(OutboxItem, item.id)
        assert row is not None
        row.next_attempt_at = utcnow() - dt.timedelta(seconds=1)
        session.add(row)
    await deliver_once(database, app.state.adapters)
    [item] = await outbox(database, case)
    assert item.status == "sending" and item.provider_id is not None
    assert [r.answered for r in twilio.requests] == [status, 201]


async def test_wrong_credentials_are_retried_not_blamed_on_the_citizen(
    settings: Settings, database: Database, twilio: TwilioStandIn
) -> None:
    case = await texted_case(database)
    adapters = AdapterRegistry()
    adapters.register(twilio_adapter(twilio, auth_token="not-the-token"))
    await deliver_once(database, adapters)
    [item] = await outbox(database, case)
    assert item.status == "sending"  # retried until the budget ends in technical-failure
    assert item.last_error is not None and "HTTP 401" in item.last_error
    assert not twilio.requests[0].authorized


async def test_twilio_out_of_reach_is_a_temporary_failure(
    database: Database, twilio: TwilioStandIn
) -> None:
    case = await texted_case(database)
    adapters = AdapterRegistry()
    adapters.register(
        # Nothing listens on the discard port.
        twilio_adapter(twilio, api_base="http://127.0.0.1:9", timeout=2)
    )
    await deliver_once(database, adapters)
    [item] = await outbox(database, case)
    assert item.status == "sending"
    assert item.last_error == "Twilio not reachable: ConnectError"


def outbound(recipient: str, body: str) -> Outbound:
    return Outbound(
        id=uuid.uuid4(),
        channel="sms",
        recipient=recipient,
        subject="",
        body=body,
        language="nl",
        template="reply",
    )


async def test_an_invalid_number_or_an_over_long_text_never_reaches_twilio(
    twilio: TwilioStandIn,
) -> None:
    adapter = twilio_adapter(twilio)
    bad_number = await adapter.send(outbound("06-123", "Hallo"))
    assert bad_number.status == "permanent-failure"
    assert bad_number.detail is not None and bad_number.detail.startswith("not a valid phone")

    too_long = await adapter.send(outbound(PHONE, "ë" * 700))
    assert too_long.status == "permanent-failure"
    assert too_long.detail is not None and "needs 11 SMS parts; the most is 10" in too_long.detail

    assert twilio.requests == []


async def test_a_messaging_service_sid_is_sent_as_such(twilio: TwilioStandIn) -> None:
    adapter = twilio_adapter(twilio, sender="MG" + "1" * 32)
    report = await adapter.send(outbound("0612345678", "Hallo"))
    assert report.status == "sending"
    [sent] = twilio.sent
    assert sent["MessagingServiceSid"] == "MG" + "1" * 32
    assert "From" not in sent
    assert sent["To"] == PHONE


async def test_a_text_queued_before_the_number_texted_stop_is_not_sent(
    app: FastAPI, database: Database, twilio: TwilioStandIn
) -> None:
    case = await texted_case(database)
    async with database.session() as session:
        address = (
            await session.exec(select(DigitalAddress).where(DigitalAddress.value == PHONE))
        ).one()
        address.opted_out_at = utcnow()
        session.add(address)

    await deliver_once(database, app.state.adapters)

    assert twilio.requests == []
    first, fallback = await outbox(database, case)
    assert first.status == "permanent-failure"
    assert first.last_error is not None and "texted STOP" in first.last_error
    assert fallback.channel == "email"


def test_an_account_sid_without_token_or_number_stops_the_hub_from_starting(
    tmp_path: Path, database: Database
) -> None:
    settings = Settings(environment="test", data_dir=tmp_path, twilio_account_sid="AC" + "1" * 32)
    with pytest.raises(TwilioSettingsMissing, match="HUB_TWILIO_AUTH_TOKEN"):
        adapters(settings, database)


def test_without_an_account_sid_texts_stay_in_the_development_outbox(
    tmp_path: Path, database: Database
) -> None:
    assert adapters(Settings(environment="test", data_dir=tmp_path), database) == []


async def test_a_reply_too_long_for_a_text_is_refused_before_it_is_queued(
    database: Database,
) -> None:
    async with database.session() as session:
        await make_agency(session)
        party = await make_party(session, phone=PHONE)
        case = await make_case(session, party)
    refused = None
    async with database.session() as session:
        try:
            await reply(
                session,
                case=case,
                author=STAFF,
                body="Uw aanvraag is ontvangen. " * 60,
                channel="sms",
            )
        except InvalidInput as error:
            refused = error.detail
            await session.rollback()
    assert refused == "This text needs 11 SMS parts; the most is 10. Shorten it by 30 characters."
    async with database.session() as session:
        queued = (await session.exec(select(OutboxItem).where(OutboxItem.channel == "sms"))).all()
    assert queued == []
