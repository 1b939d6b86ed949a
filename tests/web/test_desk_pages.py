"""Counter-desk mode over HTTP: staff look the visitor up by BSN or by name and date of birth,
for a purpose from the agency's register (logged); see all their cases, opening only their
own agency's; record the visit with the identity document checked; say how news will reach
the citizen; and print the status summary."""

from __future__ import annotations

import datetime as dt
import re

import httpx
from sqlmodel import col, select

from hub.db import Database
from hub.models import AccessLogEntry, Message, Party
from tests.builders import make_agency, make_case, make_mandate, make_party
from tests.web.test_pages import csrf_of, log_in_staff
from tests.web.world import PortalWorld, make_portal_world

PURPOSE = "vragen-beantwoorden"


async def jan(database: Database, world: PortalWorld) -> Party:
    async with database.session() as session:
        party = await session.get(Party, world.citizen_id)
        assert party is not None
        return party


async def test_the_desk_finds_a_citizen_by_bsn_and_logs_the_search_with_its_purpose(
    client: httpx.AsyncClient, database: Database
) -> None:
    world = await make_portal_world(database)
    async with database.session() as session:
        await make_agency(session, "rdw")
        party = await session.get(Party, world.citizen_id)
        assert party is not None and party.bsn is not None
        licence = await make_case(session, party, agency_id="rdw")
        bsn = party.bsn
        await make_mandate(
            session, representative=await make_party(session, "Anna Hulp"), party=party
        )
    await log_in_staff(client, world)
    page = await client.get("/console/desk")
    assert page.status_code == 200 and 'value="vragen-beantwoorden"' in page.text

    nothing = await client.post(
        "/console/desk/search", data={"csrf_token": csrf_of(page.text), "bsn": bsn}
    )
    assert nothing.status_code == 422
    assert "Kies waarom u deze persoon opzoekt." in nothing.text
    assert bsn not in nothing.text  # a BSN typed is not shown again

    found = await client.post(
        "/console/desk/search",
        data={"csrf_token": csrf_of(page.text), "bsn": bsn, "purpose": PURPOSE},
    )
    assert found.status_code == 200
    assert "<h1>Jan Jansen</h1>" in found.text and "jan@example.nl" in found.text
    assert re.search(r"Anna Hulp \(voor alle zaken\)", found.text)
    assert f'href="/console/desk/cases/{world.mail_case_id}"' in found.text
    # Another agency's case is listed, so the desk can refer the citizen, but does not open.
    assert licence.reference in found.text
    assert f"/console/desk/cases/{licence.id}" not in found.text
    assert "Alleen zij kunnen deze zaak openen." in found.text
    assert (await client.get(f"/console/desk/cases/{licence.id}")).status_code == 404

    async with database.session() as session:
        searches = (
            await session.exec(
                select(AccessLogEntry).where(
                    AccessLogEntry.party_id == world.citizen_id,
                    col(AccessLogEntry.action) == "search",
                )
            )
        ).all()
    assert len(searches) == 1
    assert searches[0].data == "party,case_list" and searches[0].processing_activity_id


async def test_the_desk_finds_a_citizen_by_name_and_date_of_birth(
    client: httpx.AsyncClient, database: Database
) -> None:
    world = await make_portal_world(database)
    async with database.session() as session:
        party = await session.get(Party, world.citizen_id)
        assert party is not None
        party.date_of_birth = dt.date(1980, 4, 1)
        session.add(party)
    await log_in_staff(client, world)
    page = await client.get("/console/desk")
    token = csrf_of(page.text)
    half = await client.post(
        "/console/desk/search",
        data={"csrf_token": token, "name": "Jan Jansen", "purpose": PURPOSE},
    )
    assert half.status_code == 422
    assert "Zoekt u op naam? Vul dan ook de geboortedatum in." in half.text
    assert 'value="Jan Jansen"' in half.text  # what was typed comes back
    wrong = await client.post(
        "/console/desk/search",
        data={
            "csrf_token": token,
            "name": "Jan Jansen",
            "date_of_birth": "1980-04-02",
            "purpose": PURPOSE,
        },
    )
    assert wrong.status_code == 404 and "Wij vonden niemand met deze gegevens." in wrong.text
    found = await client.post(
        "/console/desk/search",
        data={
            "csrf_token": token,
            "name": "  jan   JANSEN ",
            "date_of_birth": "1980-04-01",
            "purpose": PURPOSE,
        },
    )
    assert found.status_code == 200 and "<h1>Jan Jansen</h1>" in found.text
    assert "1 april 1980" in found.text


async def test_a_visit_is_recorded_only_with_an_identity_document_checked(
    client: httpx.AsyncClient, database: Database
) -> None:
    world = await make_portal_world(database)
    await log_in_staff(client, world)
    page = await client.get(f"/console/desk/cases/{world.mail_case_id}")
    assert page.status_code == 200
    target = f"/console/desk/cases/{world.mail_case_id}/visits"
    known_by_sight = await client.post(
        target,
        data={
            "csrf_token": csrf_of(page.text),
            "topic": "Vraag over huur",
            "identity_document": "",
        },
    )
    assert known_by_sight.status_code == 422
    assert "Kies het identiteitsbewijs dat u hebt gecontroleerd." in known_by_sight.text
    recorded = await client.post(
        target,
        data={
            "csrf_token": csrf_of(page.text),
            "topic": "Huurcontract gebracht",
            "summary": "Kopie van het huurcontract bekeken.",
            "identity_document": "passport",
        },
    )
    assert recorded.status_code == 303
    assert "Het bezoek staat bij de zaak." in (await client.get(recorded.headers["location"])).text
    async with database.session() as session:
        visit = (
            await session.exec(
                select(Message).where(
                    Message.case_id == world.mail_case_id, Message.channel == "counter"
                )
            )
        ).one()
    assert visit.identified_by == "id_document" and visit.meta["document"] == "passport"
    case_page = (await client.get(f"/console/cases/{world.mail_case_id}")).text
    assert "Kopie van het huurcontract bekeken." in case_page


async def test_the_follow_up_channel_needs_an_address_on_it(
    client: httpx.AsyncClient, database: Database
) -> None:
    world = await make_portal_world(database)
    await log_in_staff(client, world)
    page = await client.get(f"/console/desk/cases/{world.mail_case_id}")
    target = f"/console/desk/cases/{world.mail_case_id}/follow-up"
    no_post = await client.post(
        target, data={"csrf_token": csrf_of(page.text), "channel": "letter"}
    )
    assert no_post.status_code == 422
    assert "De burger heeft geen gecontroleerd adres voor dit kanaal." in no_post.text
    by_mail = await client.post(target, data={"csrf_token": csrf_of(page.text), "channel": "email"})
    assert by_mail.status_code == 303
    shown = (await client.get(by_mail.headers["location"])).text
    assert "Opgeslagen." in shown and "Nu: E-mail" in shown


async def test_the_status_summary_is_a_page_to_print_and_its_reading_is_logged(
    client: httpx.AsyncClient, database: Database
) -> None:
    world = await make_portal_world(database)
    await log_in_staff(client, world)
    summary = await client.get(f"/console/desk/cases/{world.waiting_case_id}/summary")
    assert summary.status_code == 200
    text = summary.text
    assert "Hoe gaat het met uw zaak" in text and "Jan Jansen" in text
    assert "Dienst Toeslagen" in text and "Sanne de Wit" in text
    assert "A copy of your rental agreement" in text  # what the citizen must still send
    assert f"/cases/{world.waiting_case_id}" in text
    assert "data-print hidden" in text and "/static/console.js" in text
    css = (await client.get("/static/hub.css")).text
    assert "@media print" in css and ".no-print" in css
    async with database.session() as session:
        logged = (
            await session.exec(
                select(AccessLogEntry).where(AccessLogEntry.data == "status_summary")
            )
        ).all()
    assert [entry.case_id for entry in logged] == [world.waiting_case_id]
