"""The review queue routes: staff list, read, attach, discard, and verify a sender's address."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from sqlmodel import select

from channels.email.inbound import receive_mail
from hub.config import Settings
from hub.db import Database
from hub.models import (
    AccessLogEntry,
    Case,
    CaseEvent,
    DigitalAddress,
    Document,
    Message,
    OutboxItem,
    Party,
    ReviewItem,
    StaffMember,
)
from hub.review.service import add_review_item
from tests.builders import bearer, make_agency, make_case, make_party, token_for
from tests.email.mails import PDF, citizen_mail


class World:
    """Two agencies, a member of staff at each, a party with a case at the first."""

    party: Party
    case: Case
    staff: dict[str, str]


@pytest.fixture
async def w(database: Database) -> World:
    w = World()
    async with database.session() as session:
        await make_agency(session, "toeslagen")
        await make_agency(session, "belastingen")
        # Staff without a password: these tests log in by session token, and hashing
        # passwords would be most of their run time.
        mine = StaffMember(
            agency_id="toeslagen", email="sanne@toeslagen.test", display_name="Sanne"
        )
        other = StaffMember(
            agency_id="belastingen", email="piet@belastingen.test", display_name="Piet"
        )
        session.add_all([mine, other])
        w.party = await make_party(session, "Jan Jansen")
        w.case = await make_case(session, w.party, agency_id="toeslagen")
    w.staff = {
        "mine": await token_for(database, "staff", mine.id),
        "other": await token_for(database, "staff", other.id),
    }
    return w


async def an_item(
    database: Database, *, body: str = "Ik heb een vraag over mijn toeslag.", **fields: object
) -> ReviewItem:
    async with database.session() as session:
        values: dict[str, object] = {
            "channel": "email",
            "sender": "jan.prive@example.nl",
            "subject": "Vraag",
            "reason": "no_token",
        }
        values.update(fields)
        return await add_review_item(session, body=body, **values)  # type: ignore[arg-type]


async def attach(
    client: httpx.AsyncClient,
    item_id: uuid.UUID,
    token: str,
    *,
    case_id: uuid.UUID,
    party_id: uuid.UUID | None = None,
) -> httpx.Response:
    body = {"case_id": str(case_id)}
    if party_id is not None:
        body["party_id"] = str(party_id)
    return await client.post(
        f"/api/review-items/{item_id}/attach", json=body, headers=bearer(token)
    )


async def start_verification(
    client: httpx.AsyncClient, item: ReviewItem, party: Party, token: str
) -> httpx.Response:
    return await client.post(
        f"/api/review-items/{item.id}/verification",
        json={"party_id": str(party.id)},
        headers=bearer(token),
    )


async def confirm(
    client: httpx.AsyncClient, item: ReviewItem, code: str, token: str
) -> httpx.Response:
    return await client.post(
        f"/api/review-items/{item.id}/verification/confirm",
        json={"code": code},
        headers=bearer(token),
    )


async def test_only_staff_see_the_queue(
    client: httpx.AsyncClient, database: Database, w: World
) -> None:
    citizen = await token_for(database, "citizen", w.party.id)
    assert (await client.get("/api/review-items")).status_code == 401
    assert (await client.get("/api/review-items", headers=bearer(citizen))).status_code == 403


async def test_open_items_newest_first_with_an_excerpt(
    client: httpx.AsyncClient, database: Database, w: World
) -> None:
    await an_item(database, subject="Eerste")
    await an_item(database, channel="sms", sender="+31612345678", subject=None, body="x " * 300)
    response = await client.get("/api/review-items", headers=bearer(w.staff["mine"]))
    assert response.status_code == 200
    newest, oldest = response.json()
    assert newest["channel"] == "sms" and newest["sender"] == "+31612345678"
    assert len(newest["excerpt"]) <= 200 and newest["excerpt"].endswith("…")
    assert oldest["subject"] == "Eerste" and oldest["reason"] == "no_token"
    assert oldest["excerpt"] == "Ik heb een vraag over mijn toeslag."
    only_sms = await client.get("/api/review-items?channel=sms", headers=bearer(w.staff["mine"]))
    assert [i["channel"] for i in only_sms.json()] == ["sms"]


async def test_reading_an_item_linked_to_a_party_is_logged(
    client: httpx.AsyncClient, database: Database, w: World
) -> None:
    anonymous = await an_item(database)
    suggested = await an_item(database, party_id=w.party.id)
    for item in (anonymous, suggested):
        response = await client.get(f"/api/review-items/{item.id}", headers=bearer(w.staff["mine"]))
        assert response.status_code == 200
        assert response.json()["body"] == "Ik heb een vraag over mijn toeslag."
    async with database.session() as session:
        log = (await session.exec(select(AccessLogEntry))).all()
    assert [(e.party_id, e.data, e.action) for e in log] == [(w.party.id, "review_item", "read")]
    await client.get("/api/review-items", headers=bearer(w.staff["mine"]))
    async with database.session() as session:
        log = (await session.exec(select(AccessLogEntry))).all()
    assert sorted(e.action for e in log) == ["list", "read"]
    missing = await client.get(f"/api/review-items/{uuid.uuid4()}", headers=bearer(w.staff["mine"]))
    assert missing.status_code == 404


async def test_attaching_puts_the_mail_and_its_files_on_the_case(
    client: httpx.AsyncClient, database: Database, settings: Settings, w: World
) -> None:
    async with database.session() as session:
        outcome = await receive_mail(
            session,
            raw=citizen_mail(
                to="info@reply.hub.example.nl",
                text="Hierbij mijn loonstrook.",
                attachments=[("loonstrook.pdf", "application/pdf", PDF)],
            ),
            settings=settings,
            via="http",
        )
    assert outcome.review_item is not None
    item_id = outcome.review_item.id
    shown = await client.get(f"/api/review-items/{item_id}", headers=bearer(w.staff["mine"]))
    assert {d["content_type"] for d in shown.json()["documents"]} == {
        "message/rfc822",
        "application/pdf",
    }

    response = await attach(
        client, item_id, w.staff["mine"], case_id=w.case.id, party_id=w.party.id
    )
    assert response.status_code == 200, response.text
    assert response.json()["item"]["status"] == "attached"
    async with database.session() as session:
        message = await session.get(Message, uuid.UUID(response.json()["message_id"]))
        documents = (
            await session.exec(select(Document).where(Document.review_item_id == item_id))
        ).all()
        item = await session.get(ReviewItem, item_id)
    assert message is not None and item is not None
    assert message.case_id == w.case.id and message.identified_by == "staff_review"
    assert message.channel == "email" and message.direction == "inbound"
    assert message.body == "Hierbij mijn loonstrook."
    assert item.message_id == message.id and item.resolved_by is not None
    assert {(d.content_type, d.case_id, d.message_id) for d in documents} == {
        ("application/pdf", w.case.id, message.id),
        # The raw mail stays with the message, out of the case's files.
        ("message/rfc822", None, message.id),
    }
    async with database.session() as session:
        events = (await session.exec(select(CaseEvent).where(CaseEvent.case_id == w.case.id))).all()
    assert [e.payload["filename"] for e in events if e.kind == "document_added"] == [
        "loonstrook.pdf"
    ]

    again = await attach(client, item_id, w.staff["mine"], case_id=w.case.id)
    assert again.status_code == 409


async def test_staff_cannot_attach_to_a_case_they_may_not_see(
    client: httpx.AsyncClient, database: Database, w: World
) -> None:
    item = await an_item(database)
    response = await attach(client, item.id, w.staff["other"], case_id=w.case.id)
    assert response.status_code == 404
    async with database.session() as session:
        unchanged = await session.get(ReviewItem, item.id)
        messages = (await session.exec(select(Message).where(Message.case_id == w.case.id))).all()
    assert unchanged is not None and unchanged.status == "open"
    assert messages == []


async def test_attaching_to_a_case_of_another_party_than_named_is_refused(
    client: httpx.AsyncClient, database: Database, w: World
) -> None:
    item = await an_item(database)
    response = await attach(
        client, item.id, w.staff["mine"], case_id=w.case.id, party_id=uuid.uuid4()
    )
    assert response.status_code == 422


async def test_discarding_keeps_the_reason_and_empties_the_queue(
    client: httpx.AsyncClient, database: Database, w: World
) -> None:
    item = await an_item(database)
    headers = bearer(w.staff["mine"])
    empty = await client.post(
        f"/api/review-items/{item.id}/discard", json={"reason": ""}, headers=headers
    )
    assert empty.status_code == 422
    response = await client.post(
        f"/api/review-items/{item.id}/discard", json={"reason": "Reclame"}, headers=headers
    )
    assert response.status_code == 200
    assert response.json()["status"] == "discarded"
    assert response.json()["meta"]["discard_reason"] == "Reclame"
    assert (await client.get("/api/review-items", headers=headers)).json() == []
    discarded = await client.get("/api/review-items?status=discarded", headers=headers)
    assert [i["id"] for i in discarded.json()] == [str(item.id)]


async def sent_code(database: Database, recipient: str) -> str:
    async with database.session() as session:
        outbox = (
            await session.exec(
                select(OutboxItem)
                .where(OutboxItem.recipient == recipient)
                .where(OutboxItem.template == "address_verification")
            )
        ).all()
    found = re.search(r"\b(\d{6})\b", outbox[-1].body)
    assert found is not None
    return found.group(1)


async def addresses_of(database: Database, party: Party) -> list[DigitalAddress]:
    async with database.session() as session:
        query = select(DigitalAddress).where(DigitalAddress.party_id == party.id)
        return list((await session.exec(query)).all())


async def test_an_address_is_linked_only_once_the_code_comes_back(
    client: httpx.AsyncClient, database: Database, w: World
) -> None:
    item = await an_item(database, sender="Jan.Prive@Example.NL")
    headers = bearer(w.staff["mine"])
    started = await start_verification(client, item, w.party, w.staff["mine"])
    assert started.status_code == 202, started.text
    assert started.json()["channel"] == "email"
    assert started.json()["address"] == "jan.prive@example.nl"
    assert await addresses_of(database, w.party) == []
    code = await sent_code(database, "jan.prive@example.nl")
    shown = await client.get(f"/api/review-items/{item.id}", headers=headers)
    assert code not in shown.text and "code_hash" not in shown.text

    wrong = "000000" if code != "000000" else "111111"
    refused = await confirm(client, item, wrong, w.staff["mine"])
    assert refused.status_code == 422 and refused.json()["attempts_left"] == 4
    refused = await confirm(client, item, wrong, w.staff["mine"])
    assert refused.json()["attempts_left"] == 3  # the first wrong try was kept
    assert await addresses_of(database, w.party) == []

    confirmed = await confirm(client, item, code, w.staff["mine"])
    assert confirmed.status_code == 200, confirmed.text
    [address] = await addresses_of(database, w.party)
    assert (address.kind, address.value, address.verified) == (
        "email",
        "jan.prive@example.nl",
        True,
    )
    replay = await confirm(client, item, code, w.staff["mine"])
    assert replay.status_code == 409


async def test_a_text_senders_number_is_verified_by_sms(
    client: httpx.AsyncClient, database: Database, w: World
) -> None:
    item = await an_item(database, channel="sms", sender="+31612345678", subject=None)
    started = await start_verification(client, item, w.party, w.staff["mine"])
    assert started.json()["channel"] == "sms"
    code = await sent_code(database, "+31612345678")
    await confirm(client, item, code, w.staff["mine"])
    [address] = await addresses_of(database, w.party)
    assert (address.kind, address.value, address.verified) == ("phone", "+31612345678", True)


async def test_no_verification_for_a_party_the_staff_member_cannot_see(
    client: httpx.AsyncClient, database: Database, w: World
) -> None:
    item = await an_item(database)
    response = await start_verification(client, item, w.party, w.staff["other"])
    assert response.status_code == 404
    async with database.session() as session:
        assert (
            await session.exec(
                select(OutboxItem).where(OutboxItem.template == "address_verification")
            )
        ).all() == []
