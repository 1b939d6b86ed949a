"""The counter desk on SQLite and PostgreSQL: finding the visitor three ways, their cases across
agencies (contents only where the agency may see them), the access log, a visit recorded with
the identity document checked, acting on the case, and handing the follow-up to a channel."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from sqlmodel import col, select

from hub.db import Database, utcnow
from hub.desk.service import follow_up_channel
from hub.models import AccessLogEntry, DigitalAddress, Party, ProcessingActivity
from tests.builders import bearer, key_for, make_party
from tests.messages.world import DESK_PURPOSE, World, open_for

SEARCH = "/api/desk/search"


async def search(client: httpx.AsyncClient, token: str, **key: Any) -> httpx.Response:
    return await client.post(SEARCH, json={"purpose": DESK_PURPOSE, **key}, headers=bearer(token))


async def access_log(database: Database) -> list[AccessLogEntry]:
    async with database.session() as session:
        query = select(AccessLogEntry).order_by(col(AccessLogEntry.created_at))
        return list((await session.exec(query)).all())


async def activity_id(database: Database, agency_id: str, code: str) -> int | None:
    async with database.session() as session:
        query = select(ProcessingActivity).where(
            ProcessingActivity.agency_id == agency_id, ProcessingActivity.code == code
        )
        return (await session.exec(query)).one().id


async def test_a_search_by_bsn_shows_the_visitor_and_all_their_cases(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    await client.post(
        f"/api/cases/{world.question.id}/messages",
        json={"body": "Wanneer krijg ik antwoord?"},
        headers=bearer(world.anna_token),
    )
    found = await search(client, world.sanne_token, bsn=world.anna.bsn)
    assert found.status_code == 200, found.text
    party = found.json()["party"]
    assert party["name"] == "Anna de Boer" and party["date_of_birth"] == "1980-05-17"
    assert [(a["kind"], a["value"]) for a in party["verified_addresses"]] == [
        ("email", "anna@example.nl"),
        ("phone", "+31612345001"),
    ]
    assert party["postal_address"].startswith("Lange Gracht 1")
    assert party["preferred_channel"] == "portal" and party["preferred_language"] == "nl"
    assert party["needs"] == ["plain_language"]
    assert [(r["name"], r["journeys"]) for r in party["representatives"]] == [("Rita Jansen", None)]
    assert "bsn" not in party

    cases = {c["reference"]: c for c in found.json()["cases"]}
    assert set(cases) == {
        world.question.reference,
        world.allowance.reference,
        world.benefit.reference,
    }
    question = cases[world.question.reference]
    assert question["visible"] is True and question["agency_name"] == "Toeslagen"
    assert question["title"] == "Vraag" and question["stage_name"] == "Vraag ontvangen"
    assert [e["kind"] for e in question["timeline"]["events"]][:1] == ["case_started"]
    assert [m["body"] for m in question["timeline"]["messages"]] == ["Wanneer krijg ik antwoord?"]
    benefit = cases[world.benefit.reference]
    assert benefit["visible"] is False and benefit["timeline"] is None
    assert benefit["agency"] == "uwv" and benefit["title"] and benefit["stage_name"]

    rows = await access_log(database)
    assert [(r.action, r.data, r.case_id) for r in rows[:1]] == [
        ("search", "party,case_list", None)
    ]
    assert rows[0].processing_activity_id == await activity_id(database, "toeslagen", DESK_PURPOSE)
    timelines = {(r.case_id, r.processing_activity_id) for r in rows[1:]}
    assert timelines == {
        (world.question.id, await activity_id(database, "toeslagen", "vragen-beantwoorden")),
        (world.allowance.id, await activity_id(database, "toeslagen", "toeslagen-aanvraag")),
    }
    assert all((r.action, r.data, r.actor_kind) == ("read", "timeline", "staff") for r in rows[1:])


async def test_another_agencys_desk_sees_the_list_but_not_the_contents(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    found = await search(client, world.lotte_token, case_reference=world.question.reference.lower())
    assert found.status_code == 200, found.text
    cases = {c["reference"]: c for c in found.json()["cases"]}
    assert cases[world.benefit.reference]["visible"] is True
    for reference in (world.question.reference, world.allowance.reference):
        listed = cases[reference]
        assert listed["visible"] is False and listed["timeline"] is None
        assert listed["title"] and listed["stage_name"] and listed["agency_name"] == "Toeslagen"

    for url in (
        f"/api/cases/{world.question.id}/messages",
        f"/api/cases/{world.question.id}/events",
        f"/api/cases/{world.question.id}",
    ):
        assert (await client.get(url, headers=bearer(world.lotte_token))).status_code == 404
    visit = await client.post(
        f"/api/desk/cases/{world.question.id}/visits",
        json={"topic": "Vraag", "identity_document": "passport"},
        headers=bearer(world.lotte_token),
    )
    follow_up = await client.post(
        f"/api/desk/cases/{world.question.id}/follow-up",
        json={"channel": "sms"},
        headers=bearer(world.lotte_token),
    )
    assert visit.status_code == follow_up.status_code == 404
    rows = await access_log(database)
    assert {r.case_id for r in rows if r.data == "timeline"} == {world.benefit.id}


async def test_a_search_by_name_needs_the_date_of_birth(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    found = await search(
        client, world.sanne_token, name="  anna  DE boer ", date_of_birth="1980-05-17"
    )
    assert found.status_code == 200 and found.json()["party"]["id"] == str(world.anna.id)
    wrong_day = await search(
        client, world.sanne_token, name="Anna de Boer", date_of_birth="1980-05-18"
    )
    assert wrong_day.status_code == 404
    assert (await search(client, world.sanne_token, name="Anna de Boer")).status_code == 422
    both = await search(
        client,
        world.sanne_token,
        bsn=world.anna.bsn,
        name="Anna de Boer",
        date_of_birth="1980-05-17",
    )
    assert both.status_code == 422 and "exactly one" in both.text

    async with database.session() as session:
        twin = await make_party(session, "Anna de Boer")
        twin.date_of_birth = dt.date(1980, 5, 17)
        session.add(twin)
    several = await search(
        client, world.sanne_token, name="Anna de Boer", date_of_birth="1980-05-17"
    )
    assert several.status_code == 409 and "BSN" in several.json()["detail"]


async def test_a_search_names_a_purpose_from_the_register(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    response = await client.post(
        SEARCH,
        json={"bsn": world.anna.bsn, "purpose": "nieuwsgierigheid"},
        headers=bearer(world.sanne_token),
    )
    assert response.status_code == 422 and "nieuwsgierigheid" in response.json()["detail"]
    no_purpose = await client.post(
        SEARCH, json={"bsn": world.anna.bsn}, headers=bearer(world.sanne_token)
    )
    assert no_purpose.status_code == 422
    invalid = await search(client, world.sanne_token, bsn="123456789")
    assert invalid.status_code == 422 and "eleven-test" in invalid.text
    unknown = await search(client, world.sanne_token, case_reference="VR-1999-000001")
    assert unknown.status_code == 404
    assert await access_log(database) == []


async def test_the_desk_is_for_staff_only(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    key = await key_for(database, "toeslagen")
    for token in (world.anna_token, key):
        assert (await search(client, token, bsn=world.anna.bsn)).status_code == 403
        visit = await client.post(
            f"/api/desk/cases/{world.question.id}/visits",
            json={"topic": "x", "identity_document": "passport"},
            headers=bearer(token),
        )
        assert visit.status_code == 403
    assert (
        await client.post(SEARCH, json={"bsn": world.anna.bsn, "purpose": DESK_PURPOSE})
    ).status_code == 401


async def test_a_visit_is_recorded_with_the_identity_document_checked(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    url = f"/api/desk/cases/{world.question.id}/visits"
    visit = await client.post(
        url,
        json={
            "topic": "Hoogte van de toeslag",
            "summary": "Uitgelegd hoe de toeslag wordt berekend.",
            "identity_document": "id_card",
        },
        headers=bearer(world.sanne_token),
    )
    assert visit.status_code == 201, visit.text
    message = visit.json()
    assert (message["channel"], message["direction"]) == ("counter", "inbound")
    assert message["identified_by"] == "id_document"
    assert message["meta"] == {"document": "id_card", "topic": "Hoogte van de toeslag"}
    assert message["author_kind"] == "staff" and message["author_name"] == "Sanne de Wit"
    assert message["subject"] == "Hoogte van de toeslag" and message["seq"]

    seen = await client.get(
        f"/api/cases/{world.question.id}/messages", headers=bearer(world.anna_token)
    )
    assert [(m["channel"], m["body"]) for m in seen.json()] == [
        ("counter", "Uitgelegd hoe de toeslag wordt berekend.")
    ]
    rows = await access_log(database)
    assert [(r.action, r.data, r.case_id) for r in rows] == [("change", "visit", world.question.id)]


async def test_a_visit_without_an_identity_document_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    url = f"/api/desk/cases/{world.question.id}/visits"
    for body in (
        {"topic": "Even langs", "identity_document": "none_known"},
        {"topic": "Even langs", "identity_document": "known_by_sight"},
        {"topic": "Even langs"},
        {"topic": " ", "identity_document": "passport"},
    ):
        response = await client.post(url, json=body, headers=bearer(world.sanne_token))
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    refused = await client.post(
        url,
        json={"topic": "Even langs", "identity_document": "none_known"},
        headers=bearer(world.sanne_token),
    )
    assert "by sight is not enough" in refused.json()["detail"]
    thread = await client.get(
        f"/api/cases/{world.question.id}/messages", headers=bearer(world.sanne_token)
    )
    assert thread.json() == []


async def test_the_desk_acts_on_the_case_it_found(client: httpx.AsyncClient, world: World) -> None:
    found = await search(client, world.sanne_token, bsn=world.anna.bsn)
    allowance = next(
        c for c in found.json()["cases"] if c["reference"] == world.allowance.reference
    )
    url = f"/api/cases/{allowance['id']}"
    requested = await client.post(
        f"{url}/actions",
        json={"kind": "request_information", "what": "Huurcontract"},
        headers=bearer(world.sanne_token),
    )
    assert requested.status_code == 200, requested.text
    assert requested.json()["status"] == "waiting_for_citizen"
    scanned = await client.post(
        f"{url}/documents",
        files={"file": ("huurcontract.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")},
        data={"provides_information": "true"},
        headers=bearer(world.sanne_token),
    )
    assert scanned.status_code == 201, scanned.text
    assert scanned.json()["source"] == "desk_scan" and scanned.json()["information_provided"]

    question = f"/api/cases/{world.question.id}"
    decided = await client.post(
        f"{question}/actions",
        json={"kind": "decide", "result": "answered"},
        headers=bearer(world.sanne_token),
    )
    assert decided.status_code == 200, decided.text
    again = await search(client, world.sanne_token, bsn=world.anna.bsn)
    statuses = {c["reference"]: c["status"] for c in again.json()["cases"]}
    assert statuses[world.question.reference] == "closed"
    assert statuses[world.allowance.reference] == "open"


async def test_the_follow_up_is_handed_to_a_channel_the_party_can_be_reached_on(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    url = f"/api/desk/cases/{world.question.id}/follow-up"
    async with database.session() as session:
        assert await follow_up_channel(session, world.question.id) is None
    texted = await client.post(url, json={"channel": "sms"}, headers=bearer(world.sanne_token))
    assert texted.status_code == 201, texted.text
    assert texted.json()["text"] == "Wij sturen u een sms zodra er nieuws is over uw zaak."
    events = await client.get(
        f"/api/cases/{world.question.id}/events", headers=bearer(world.anna_token)
    )
    last = events.json()["events"][-1]
    assert last["kind"] == "follow_up_channel" and last["audience"] == "citizen"
    assert last["payload"]["channel"] == "sms" and last["seq"] == texted.json()["seq"]
    async with database.session() as session:
        assert await follow_up_channel(session, world.question.id) == "sms"

    mailed = await client.post(url, json={"channel": "email"}, headers=bearer(world.sanne_token))
    assert mailed.status_code == 201
    async with database.session() as session:
        assert await follow_up_channel(session, world.question.id) == "email"
        assert await follow_up_channel(session, world.allowance.id) is None


async def test_a_follow_up_channel_without_an_address_is_refused_naming_what_is_missing(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    async with database.session() as session:
        case = await open_for(session, world.bram, "vraag", agency_id="toeslagen")
    url = f"/api/desk/cases/{case.id}/follow-up"
    for channel, needle in (
        ("sms", "no verified mobile number"),
        ("email", "no verified email address"),
        ("letter", "no postal address"),
        ("portal", "email, sms, letter"),
    ):
        response = await client.post(
            url, json={"channel": channel}, headers=bearer(world.sanne_token)
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert needle in response.json()["detail"]
        if channel != "portal":
            assert "Bram Smit" in response.json()["detail"]
    async with database.session() as session:
        assert await follow_up_channel(session, case.id) is None


async def test_a_number_that_stopped_texts_or_no_digital_contact_rules_out_a_channel(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    async with database.session() as session:
        maria = await make_party(
            session,
            "Maria",
            phone="+31612345002",
            language="en",
            postal_address="Kade 2\n1000 AA Amsterdam",
        )
        number = (
            await session.exec(select(DigitalAddress).where(DigitalAddress.party_id == maria.id))
        ).one()
        number.opted_out_at = utcnow()
        session.add(number)
        case = await open_for(session, maria, "vraag", agency_id="toeslagen")
    url = f"/api/desk/cases/{case.id}/follow-up"
    stopped = await client.post(url, json={"channel": "sms"}, headers=bearer(world.sanne_token))
    assert stopped.status_code == 422 and "STOP" in stopped.json()["detail"]
    letter = await client.post(url, json={"channel": "letter"}, headers=bearer(world.sanne_token))
    assert letter.status_code == 201
    assert (
        letter.json()["text"]
        == "We will send you a letter as soon as there is news about your case."
    )

    async with database.session() as session:
        anna = await session.get(Party, world.anna.id)
        assert anna is not None
        anna.needs = ["no_digital_contact"]
        session.add(anna)
    url = f"/api/desk/cases/{world.question.id}/follow-up"
    mail = await client.post(url, json={"channel": "email"}, headers=bearer(world.sanne_token))
    assert mail.status_code == 422 and "no digital contact" in mail.json()["detail"]
    assert (
        await client.post(url, json={"channel": "letter"}, headers=bearer(world.sanne_token))
    ).status_code == 201
