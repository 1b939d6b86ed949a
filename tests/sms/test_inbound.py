"""Texts in: onto the party's open case, asking which one when there are several, the review
queue for the rest; STOP and START; a repeated webhook applied once."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlmodel import col, select

from hub.app import create_app
from hub.config import Settings
from hub.db import Database
from hub.delivery.worker import deliver_once
from hub.events.service import Actor
from hub.messages.service import reply
from hub.models import Case, CaseEvent, DigitalAddress, Message, OutboxItem, Party, ReviewItem
from tests.builders import make_agency, make_case, make_party
from tests.fakes.twilio import TwilioStandIn, new_sid
from tests.sms.conftest import post_webhook

INBOUND = "/api/sms/inbound"
PHONE = "+31612345678"


async def citizen(
    database: Database, *, cases: int, verified: bool = True, phone: str = PHONE
) -> tuple[Party, list[Case]]:
    async with database.session() as session:
        await make_agency(session)
        party = await make_party(
            session,
            "Fatima el Amrani",
            phone=phone,
            email="fatima@example.nl",
            verified=verified,
        )
        made = [await make_case(session, party) for _ in range(cases)]
    return party, made


async def text(
    client: httpx.AsyncClient,
    twilio: TwilioStandIn,
    body: str,
    *,
    sender: str = PHONE,
    sid: str | None = None,
) -> httpx.Response:
    form = twilio.inbound_form(sender=sender, body=body, sid=sid)
    response = await post_webhook(client, twilio, INBOUND, form)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    return response


async def texts_on(database: Database, case: Case) -> list[Message]:
    async with database.session() as session:
        query = (
            select(Message)
            .where(Message.case_id == case.id, Message.channel == "sms")
            .order_by(col(Message.created_at))
        )
        return list((await session.exec(query)).all())


async def review_items(database: Database) -> list[ReviewItem]:
    async with database.session() as session:
        query = select(ReviewItem).order_by(col(ReviewItem.received_at))
        return list((await session.exec(query)).all())


async def texts_out(database: Database, template: str) -> list[OutboxItem]:
    async with database.session() as session:
        query = select(OutboxItem).where(
            OutboxItem.channel == "sms", OutboxItem.template == template
        )
        return list((await session.exec(query)).all())


async def test_a_text_from_a_verified_number_lands_on_the_open_case(
    client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn
) -> None:
    party, [case] = await citizen(database, cases=1)
    sid = new_sid()

    await text(client, twilio, "Is mijn aanvraag al bekeken? Groet, Fatima", sid=sid)

    [message] = await texts_on(database, case)
    assert message.body == "Is mijn aanvraag al bekeken? Groet, Fatima"
    assert (message.direction, message.identified_by, message.external_id) == (
        "inbound",
        "verified_phone",
        sid,
    )
    assert (message.author_kind, message.author_name) == ("citizen", "Fatima el Amrani")
    assert message.party_id == party.id
    async with database.session() as session:
        [event] = (
            await session.exec(
                select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.kind == "message")
            )
        ).all()
    assert event.payload["channel"] == "sms"
    assert await review_items(database) == []


async def test_a_repeated_webhook_makes_one_message(
    client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn
) -> None:
    _, [case] = await citizen(database, cases=1)
    sid = new_sid()
    for _ in range(3):
        await text(client, twilio, "Hallo", sid=sid)
    assert len(await texts_on(database, case)) == 1


async def test_a_number_written_locally_is_matched_as_e164(
    client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn
) -> None:
    _, [case] = await citizen(database, cases=1)
    await text(client, twilio, "Hallo", sender="0612345678")
    assert len(await texts_on(database, case)) == 1


async def test_an_unknown_number_goes_to_the_review_queue(
    client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn
) -> None:
    _, [case] = await citizen(database, cases=1)
    await text(client, twilio, "Wie kan mij helpen?", sender="+31687654321")

    [item] = await review_items(database)
    assert (item.channel, item.reason, item.sender, item.body) == (
        "sms",
        "unknown_sender",
        "+31687654321",
        "Wie kan mij helpen?",
    )
    assert item.party_id is None
    assert await texts_on(database, case) == []


async def test_an_unverified_number_identifies_nobody(
    client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn
) -> None:
    _, [case] = await citizen(database, cases=1, verified=False)
    await text(client, twilio, "Ik ben het, Fatima")

    [item] = await review_items(database)
    assert (item.reason, item.party_id) == ("unknown_sender", None)
    assert await texts_on(database, case) == []


async def test_a_sender_name_instead_of_a_number_goes_to_the_review_queue(
    client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn
) -> None:
    await text(client, twilio, "STOP", sender="BANK")
    [item] = await review_items(database)
    assert (item.reason, item.sender, item.body) == ("unknown_sender", "BANK", "STOP")


async def test_no_open_case_goes_to_the_review_queue_with_the_party_suggested(
    client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn
) -> None:
    party, _ = await citizen(database, cases=0)
    await text(client, twilio, "Ik heb een vraag over mijn toeslag")
    [item] = await review_items(database)
    assert (item.reason, item.party_id) == ("no_open_case", party.id)


async def test_several_open_cases_ask_which_one_and_the_answer_puts_both_texts_there(
    app: FastAPI, client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn
) -> None:
    party, cases = await citizen(database, cases=3)

    await text(client, twilio, "Ik ben verhuisd per 1 maart.")

    [held] = await review_items(database)
    assert (held.reason, held.party_id, held.status) == ("several_open_cases", party.id, "open")
    [question] = await texts_out(database, "sms_which_case")
    assert question.recipient == PHONE
    lines = question.body.splitlines()
    assert lines[0].startswith("U heeft meer dan één lopende zaak")
    listed = [line.split(" ")[1] for line in lines[1:]]
    assert sorted(listed) == sorted(c.reference for c in cases)
    assert all(line.endswith("Vraag") for line in lines[1:])
    for case in cases:
        assert await texts_on(database, case) == []

    # The question goes out as a text like any other.
    await deliver_once(database, app.state.adapters)
    assert [sent["Body"] for sent in twilio.sent] == [question.body]

    chosen = next(c for c in cases if c.reference == listed[1])
    await text(client, twilio, "2")

    on_case = await texts_on(database, chosen)
    assert [m.body for m in on_case] == ["Ik ben verhuisd per 1 maart.", "2"]
    assert on_case[0].external_id == held.external_id
    assert on_case[0].meta["held_until_case_chosen"] is True
    assert all(m.identified_by == "verified_phone" for m in on_case)
    [held] = await review_items(database)
    assert (held.status, held.case_id, held.message_id) == ("attached", chosen.id, on_case[0].id)
    for other in cases:
        if other.id != chosen.id:
            assert await texts_on(database, other) == []


async def test_the_answer_may_name_the_reference_and_texts_held_meanwhile_come_along(
    client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn
) -> None:
    _, cases = await citizen(database, cases=2)

    await text(client, twilio, "Eerste bericht")
    await text(client, twilio, "Nog iets")  # held too, without asking again
    assert len(await texts_out(database, "sms_which_case")) == 1

    target = cases[0]
    prefix, year, number = target.reference.split("-")
    await text(client, twilio, f"Over {prefix.lower()} {year} {int(number)} graag")

    assert [m.body for m in await texts_on(database, target)] == [
        "Eerste bericht",
        "Nog iets",
        f"Over {prefix.lower()} {year} {int(number)} graag",
    ]
    assert {i.status for i in await review_items(database)} == {"attached"}


async def test_an_answer_that_names_no_case_is_held_and_not_asked_again(
    client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn
) -> None:
    _, cases = await citizen(database, cases=2)
    await text(client, twilio, "Eerste bericht")
    await text(client, twilio, "7")  # not in the list
    await text(client, twilio, "Ik bedoel die van vorige week")
    items = await review_items(database)
    assert [i.status for i in items] == ["open", "open", "open"]
    assert len(await texts_out(database, "sms_which_case")) == 1
    for case in cases:
        assert await texts_on(database, case) == []


async def test_a_text_naming_an_open_case_lands_there_without_asking(
    client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn
) -> None:
    _, cases = await citizen(database, cases=2)
    await text(client, twilio, f"Vraag over {cases[1].reference}: is er nieuws?")
    assert len(await texts_on(database, cases[1])) == 1
    assert await texts_out(database, "sms_which_case") == []


async def test_a_reference_to_someone_elses_case_is_no_answer(
    client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn
) -> None:
    await citizen(database, cases=2)
    async with database.session() as session:
        stranger = await make_party(session, phone="+31611111111")
        theirs = await make_case(session, stranger)
    await text(client, twilio, "Eerste bericht")
    await text(client, twilio, theirs.reference)
    assert await texts_on(database, theirs) == []
    assert [i.status for i in await review_items(database)] == ["open", "open"]


# -- STOP and START ----------------------------------------------------------------------


async def address(database: Database) -> DigitalAddress:
    async with database.session() as session:
        query = select(DigitalAddress).where(DigitalAddress.value == PHONE)
        return (await session.exec(query)).one()


async def test_stop_ends_texts_to_the_number_and_start_brings_them_back(
    app: FastAPI, client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn
) -> None:
    _, [case] = await citizen(database, cases=1)
    staff = Actor(kind="staff", id=str(uuid.uuid4()), name="Sanne de Wit", agency_id="toeslagen")

    await text(client, twilio, " stop ")

    assert (await address(database)).opted_out_at is not None
    assert await texts_on(database, case) == []  # a keyword is not a message
    async with database.session() as session:
        events = (
            await session.exec(
                select(CaseEvent.kind).where(
                    CaseEvent.case_id == case.id, col(CaseEvent.kind).like("sms_opted%")
                )
            )
        ).all()
        assert events == ["sms_opted_out"]
        # A reply by text now goes by mail instead, and says so on the case.
        loaded = await session.get(Case, case.id)
        assert loaded is not None
        await reply(session, case=loaded, author=staff, body="Wij bellen u.", channel="sms")
    await deliver_once(database, app.state.adapters)
    assert twilio.requests == []
    async with database.session() as session:
        replies = (
            await session.exec(select(OutboxItem).where(OutboxItem.template == "reply"))
        ).all()
    assert [r.channel for r in replies] == ["email"]

    await text(client, twilio, "START")

    assert (await address(database)).opted_out_at is None
    async with database.session() as session:
        loaded = await session.get(Case, case.id)
        assert loaded is not None
        await reply(session, case=loaded, author=staff, body="Het is gelukt.", channel="sms")
    await deliver_once(database, app.state.adapters)
    assert [sent["Body"] for sent in twilio.sent] == ["Het is gelukt."]


async def test_stop_words_and_their_variants(
    client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn
) -> None:
    _, [case] = await citizen(database, cases=1)
    for word in ("STOPALL", "Unsubscribe", "cancel", "END", "quit.", "Stoppen", "afmelden"):
        await text(client, twilio, word)
        assert (await address(database)).opted_out_at is not None, word
        await text(client, twilio, "unstop")
        assert (await address(database)).opted_out_at is None, word
    # A sentence with the word in it is a message, not an opt-out.
    await text(client, twilio, "Stop alstublieft met die brieven")
    assert (await address(database)).opted_out_at is None
    assert [m.body for m in await texts_on(database, case)] == ["Stop alstublieft met die brieven"]


async def test_stop_from_a_number_without_open_cases_is_kept_on_the_address(
    client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn
) -> None:
    await citizen(database, cases=0, verified=False)
    await text(client, twilio, "STOP")
    assert (await address(database)).opted_out_at is not None
    assert await review_items(database) == []


async def test_webhooks_are_off_without_a_twilio_auth_token(
    database: Database, tmp_path: Path, twilio: TwilioStandIn
) -> None:
    app = create_app(Settings(environment="test", data_dir=tmp_path, run_worker=False), database)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
            form = twilio.inbound_form(sender=PHONE, body="Hallo")
            response = await post_webhook(client, twilio, INBOUND, form)
    assert response.status_code == 404
    assert "HUB_TWILIO_AUTH_TOKEN" in response.json()["detail"]


async def test_a_number_verified_by_two_parties_puts_nobody_on_a_case(
    client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn
) -> None:
    _, [case] = await citizen(database, cases=1)
    async with database.session() as session:
        partner = await make_party(session, "Youssef el Amrani", phone=PHONE)
    await text(client, twilio, "Wie van ons twee?")
    [item] = await review_items(database)
    assert (item.reason, item.party_id) == ("several_parties", None)
    assert str(partner.id) in item.meta["suggested_parties"]
    assert await texts_on(database, case) == []


async def test_a_number_that_texted_stop_is_not_asked_which_case(
    client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn
) -> None:
    party, _ = await citizen(database, cases=2)
    await text(client, twilio, "STOP")
    await text(client, twilio, "Toch nog een vraag")
    [item] = await review_items(database)
    assert (item.reason, item.party_id) == ("several_open_cases", party.id)
    assert await texts_out(database, "sms_which_case") == []


async def test_the_same_webhook_twice_at_once_makes_one_message(
    client: httpx.AsyncClient, database: Database, twilio: TwilioStandIn
) -> None:
    _, [case] = await citizen(database, cases=1)
    form = twilio.inbound_form(sender=PHONE, body="Tegelijk")
    responses = await asyncio.gather(
        *(post_webhook(client, twilio, INBOUND, form) for _ in range(4))
    )
    assert [r.status_code for r in responses] == [200] * 4
    assert [m.body for m in await texts_on(database, case)] == ["Tegelijk"]
