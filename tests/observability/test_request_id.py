"""The id of a request reaches the access log and the webhooks that request caused."""

from __future__ import annotations

import httpx
from sqlmodel import select
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from hub.db import Database
from hub.models import AccessLogEntry
from hub.webhooks.service import CASE_MESSAGE_RECEIVED, REQUEST_ID_ATTRIBUTE, subscribe
from hub.webhooks.worker import deliver_webhooks
from tests.builders import bearer, make_agency, make_case, make_party, make_staff, token_for
from tests.live.harness import (
    LiveClient,
    LiveServer,
    http,
    live_server,
    make_world,
    settings,
    ticket_for,
)
from tests.webhooks.conftest import Receiver, receiver

__all__ = ["http", "live_server", "receiver", "settings"]  # fixtures, used by name

REQUEST_ID = "portal-req-0001"


async def test_a_citizens_message_carries_its_request_id_to_the_access_log_and_the_webhook(
    client: httpx.AsyncClient, database: Database, receiver: Receiver
) -> None:
    async with database.session() as session:
        await make_agency(session, "toeslagen", activities=("vragen-beantwoorden",))
        subscription = await subscribe(
            session,
            agency_id="toeslagen",
            url=receiver.url,
            event_types=[CASE_MESSAGE_RECEIVED],
            allow_local_http=True,
        )
        receiver.secret = subscription.secret
        party = await make_party(session, "Jan Jansen", email="jan@example.nl")
        case = await make_case(session, party)
    token = await token_for(database, "citizen", party.id)

    posted = await client.post(
        f"/api/cases/{case.id}/messages",
        json={"body": "Waar blijft mijn toeslag?"},
        headers={**bearer(token), "X-Request-ID": REQUEST_ID},
    )
    assert posted.status_code == 201, posted.text
    assert posted.headers["x-request-id"] == REQUEST_ID

    assert await deliver_webhooks(database) == 1
    [delivered] = receiver.received
    assert delivered.verified
    assert delivered.headers["x-request-id"] == REQUEST_ID
    assert delivered.event[REQUEST_ID_ATTRIBUTE] == REQUEST_ID
    assert delivered.event["type"] == CASE_MESSAGE_RECEIVED


async def test_a_staff_members_read_is_logged_with_its_request_id(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.session() as session:
        await make_agency(session, "toeslagen", activities=("vragen-beantwoorden",))
        staff = await make_staff(session, "toeslagen", totp=False)
        party = await make_party(session, "Jan Jansen")
        case = await make_case(session, party)
    token = await token_for(database, "staff", staff.id)

    read = await client.get(
        f"/api/cases/{case.id}", headers={**bearer(token), "X-Request-ID": "console-req-42"}
    )
    assert read.status_code == 200, read.text

    async with database.session() as session:
        entries = (await session.exec(select(AccessLogEntry))).all()
    assert entries and {entry.request_id for entry in entries} == {"console-req-42"}
    # The citizen reads the same id in their access log.
    citizen = await token_for(database, "citizen", party.id)
    shown = (await client.get("/api/me/access-log", headers=bearer(citizen))).json()
    assert {entry["request_id"] for entry in shown} == {"console-req-42"}


async def test_an_event_made_outside_a_request_has_no_request_id(
    database: Database, receiver: Receiver
) -> None:
    from hub.events.service import Actor
    from hub.messages.service import post_message

    async with database.session() as session:
        await make_agency(session, "toeslagen")
        subscription = await subscribe(
            session,
            agency_id="toeslagen",
            url=receiver.url,
            event_types=[CASE_MESSAGE_RECEIVED],
            allow_local_http=True,
        )
        receiver.secret = subscription.secret
        party = await make_party(session)
        case = await make_case(session, party)
        # As the mail receiver does, with no HTTP request around it.
        await post_message(
            session,
            case=case,
            channel="email",
            direction="inbound",
            author=Actor(kind="citizen", id=str(party.id), name=party.name),
            body="Per mail",
            identified_by="reply_token",
        )

    assert await deliver_webhooks(database) == 1
    [delivered] = receiver.received
    assert "x-request-id" not in delivered.headers
    assert REQUEST_ID_ATTRIBUTE not in delivered.event


async def test_reads_over_a_live_socket_are_logged_with_the_id_of_the_request_that_opened_it(
    live_server: LiveServer, http: httpx.AsyncClient, database: Database
) -> None:
    world = await make_world(database)
    ticket = await ticket_for(http, world.staff_token)
    async with connect(
        live_server.ws_url,
        subprotocols=[Subprotocol("hub.live.v1"), Subprotocol(f"hub.ticket.{ticket}")],
        additional_headers={"X-Request-ID": "socket-req-0007"},
        open_timeout=5,
    ) as ws:
        client = LiveClient(ws)
        await client.expect("ready")
        await client.follow(world.case_id, after=0)

    async with database.session() as session:
        entries = (
            await session.exec(select(AccessLogEntry).where(AccessLogEntry.data == "timeline"))
        ).all()
    assert [entry.request_id for entry in entries] == ["socket-req-0007"]
