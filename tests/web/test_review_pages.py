"""The review queue pages: staff list mail and texts that matched no case, open one, put it on
a case they may see, discard it with a reason, and link the sender's address to a citizen
once the citizen reads back the code sent to it."""

from __future__ import annotations

import re

import httpx
from sqlmodel import select

from hub.app import build_adapters
from hub.config import Settings
from hub.db import Database
from hub.delivery.worker import deliver_once
from hub.models import AccessLogEntry, Case, DigitalAddress, Message, ReviewItem
from hub.review.service import add_review_item
from tests.builders import make_agency, make_case, make_party
from tests.web.test_pages import csrf_of, log_in_staff
from tests.web.world import PortalWorld, make_portal_world


async def reference_of(database: Database, case_id: object) -> str:
    async with database.session() as session:
        case = await session.get(Case, case_id)
        assert case is not None
        return case.reference


async def test_staff_open_an_unmatched_mail_and_put_it_on_a_case(
    client: httpx.AsyncClient, database: Database
) -> None:
    world = await make_portal_world(database)
    async with database.session() as session:
        await make_agency(session, "rdw")
        elsewhere = await make_case(session, await make_party(session), agency_id="rdw")
    await log_in_staff(client, world)

    queue = await client.get("/console/review")
    assert queue.status_code == 200
    assert "Vraag zonder zaak" in queue.text and "onbekend@example.nl" in queue.text
    assert "De mail is geen antwoord op een mail van ons." in queue.text
    page = await client.get(f"/console/review/{world.review_item_id}")
    assert "Ik weet niet bij welke zaak dit hoort." in page.text

    target = f"/console/review/{world.review_item_id}/attach"
    for reference in ("HU-0000-000000", elsewhere.reference):  # unknown, and not ours to see
        refused = await client.post(
            target, data={"csrf_token": csrf_of(page.text), "case_reference": reference}
        )
        assert refused.status_code == 422
        assert "Er is geen zaak met dit nummer die u mag zien." in refused.text

    reference = await reference_of(database, world.mail_case_id)
    attached = await client.post(
        target, data={"csrf_token": csrf_of(page.text), "case_reference": reference.lower()}
    )
    assert attached.status_code == 303
    shown = (await client.get(attached.headers["location"])).text
    assert "Het bericht staat nu bij de zaak." in shown
    assert f'href="/console/cases/{world.mail_case_id}">{reference}</a>' in shown
    case_page = (await client.get(f"/console/cases/{world.mail_case_id}")).text
    assert "Ik weet niet bij welke zaak dit hoort." in case_page

    assert "Vraag zonder zaak" not in (await client.get("/console/review")).text
    assert "Vraag zonder zaak" in (await client.get("/console/review?status=attached")).text
    again = await client.post(
        target, data={"csrf_token": csrf_of(page.text), "case_reference": reference}
    )
    assert again.status_code == 409


async def test_a_text_from_a_known_number_suggests_the_senders_cases_and_is_logged(
    client: httpx.AsyncClient, database: Database
) -> None:
    world = await make_portal_world(database)
    async with database.session() as session:
        item = await add_review_item(
            session,
            channel="sms",
            sender="+31612345678",
            body="Welke zaak? Ik heb er twee.",
            reason="several_open_cases",
            party_id=world.citizen_id,
        )
    await log_in_staff(client, world)
    listed = await client.get("/console/review")
    assert "De afzender heeft meer dan één open zaak." in listed.text
    page = await client.get(f"/console/review/{item.id}")
    assert "Waarschijnlijk van" in page.text and "Jan Jansen" in page.text
    suggestion = re.search(rf'name="case_id" value="{world.mail_case_id}">\s*<button', page.text)
    assert suggestion is not None
    attached = await client.post(
        f"/console/review/{item.id}/attach",
        data={"csrf_token": csrf_of(page.text), "case_id": str(world.mail_case_id)},
    )
    assert attached.status_code == 303
    async with database.session() as session:
        on_case = (
            await session.exec(
                select(Message).where(
                    Message.case_id == world.mail_case_id, Message.channel == "sms"
                )
            )
        ).one()
        assert on_case.identified_by == "staff_review"
        logged = (
            await session.exec(
                select(AccessLogEntry).where(
                    AccessLogEntry.party_id == world.citizen_id,
                    AccessLogEntry.data == "review_item",
                )
            )
        ).all()
    assert {entry.action for entry in logged} == {"list", "read"}


async def test_discarding_a_message_needs_a_reason_which_is_kept(
    client: httpx.AsyncClient, database: Database
) -> None:
    world = await make_portal_world(database)
    await log_in_staff(client, world)
    page = await client.get(f"/console/review/{world.review_item_id}")
    target = f"/console/review/{world.review_item_id}/discard"
    empty = await client.post(target, data={"csrf_token": csrf_of(page.text), "reason": " "})
    assert empty.status_code == 422 and "Zeg waarom u dit bericht weggooit." in empty.text
    discarded = await client.post(
        target, data={"csrf_token": csrf_of(page.text), "reason": "Reclame"}
    )
    assert discarded.status_code == 303
    queue = (await client.get(discarded.headers["location"])).text
    assert "Het bericht is weggegooid." in queue and "Vraag zonder zaak" not in queue
    assert "Vraag zonder zaak" in (await client.get("/console/review?status=discarded")).text
    shown = (await client.get(f"/console/review/{world.review_item_id}")).text
    assert "Weggegooid" in shown and "(Reclame)" in shown
    assert f"{world.review_item_id}/discard" not in shown  # done: no more forms for it
    assert f"{world.review_item_id}/attach" not in shown


async def test_the_senders_address_is_linked_once_the_citizen_reads_back_the_code(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world: PortalWorld = await make_portal_world(database)
    await log_in_staff(client, world)
    page = await client.get(f"/console/review/{world.review_item_id}")
    sent = await client.post(
        f"/console/review/{world.review_item_id}/verification",
        data={
            "csrf_token": csrf_of(page.text),
            "case_reference": await reference_of(database, world.mail_case_id),
        },
    )
    assert sent.status_code == 303
    shown = (await client.get(sent.headers["location"])).text
    assert "Wij hebben een code gestuurd." in shown
    assert "Er is een code gestuurd naar onbekend@example.nl." in shown

    await deliver_once(database, build_adapters(settings, database))
    mail = (await client.get("/api/dev/outbox", params={"channel": "email"})).json()[0]
    assert mail["recipient"] == "onbekend@example.nl"
    code = re.search(r"\b(\d{6})\b", mail["body"])
    assert code is not None

    confirm = f"/console/review/{world.review_item_id}/verification/confirm"
    wrong = "000000" if code.group(1) != "000000" else "111111"
    refused = await client.post(confirm, data={"csrf_token": csrf_of(shown), "code": wrong})
    assert refused.status_code == 422 and "De code is niet goed." in refused.text
    async with database.session() as session:
        item = await session.get(ReviewItem, world.review_item_id)
        assert item is not None and item.meta["verification"]["attempts"] == 1  # kept

    verified = await client.post(
        confirm, data={"csrf_token": csrf_of(shown), "code": code.group(1)}
    )
    assert verified.status_code == 303
    assert "Het adres is gecontroleerd" in (await client.get(verified.headers["location"])).text
    async with database.session() as session:
        address = (
            await session.exec(
                select(DigitalAddress).where(DigitalAddress.value == "onbekend@example.nl")
            )
        ).one()
    assert address.party_id == world.citizen_id and address.verified_at is not None
