"""Posting a notice over the API, reading its status, and the citizen's inbox."""

from __future__ import annotations

from typing import Any

import httpx
from sqlmodel import select

from hub.db import Database
from hub.models import AccessLogEntry, OutboxItem, Party
from tests.builders import bearer, make_case, make_party, token_for
from tests.notices.conftest import PERSONALISATION, World, consent


def notice(party: Party, **extra: Any) -> dict[str, Any]:
    return {
        "bsn": party.bsn,
        "topic": "allowances",
        "template": "rent",
        "personalisation": PERSONALISATION,
        **extra,
    }


async def test_post_a_notice_and_read_its_status(
    client: httpx.AsyncClient, database: Database, world: World, toeslagen_key: str, rdw_key: str
) -> None:
    async with database.session() as session:
        party = await make_party(session, email="anna@example.nl", preferred_channel="email")
        await consent(session, party, world.topic, True)
    headers = bearer(toeslagen_key)
    posted = await client.post(
        "/api/notices",
        json=notice(
            party, dedupe_key="rent-1", journey_id="vraag", important=True, escalate_after_days=7
        ),
        headers=headers,
    )
    assert posted.status_code == 201, posted.text
    body = posted.json()
    assert (body["status"], body["channel"], body["journey_id"]) == ("sending", "email", "vraag")

    again = await client.post(
        "/api/notices", json=notice(party, dedupe_key="rent-1"), headers=headers
    )
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    async with database.session() as session:
        assert len((await session.exec(select(OutboxItem))).all()) == 1

    read = await client.get(f"/api/notices/{body['id']}", headers=headers)
    assert read.json()["status"] == "sending"
    assert (
        await client.get(f"/api/notices/{body['id']}", headers=bearer(rdw_key))
    ).status_code == 404
    async with database.session() as session:
        logged = (await session.exec(select(AccessLogEntry))).all()
    assert [(e.agency_id, e.data) for e in logged] == [("toeslagen", "notice")]


async def test_not_sent_without_consent(
    client: httpx.AsyncClient, database: Database, world: World, toeslagen_key: str
) -> None:
    async with database.session() as session:
        party = await make_party(session, email="anna@example.nl", preferred_channel="email")
    posted = await client.post("/api/notices", json=notice(party), headers=bearer(toeslagen_key))
    assert posted.status_code == 201
    assert (posted.json()["status"], posted.json()["reason"]) == ("not-sent", "no_consent")
    # The citizen never got it: not in their inbox.
    citizen = bearer(await token_for(database, "citizen", party.id))
    assert (await client.get("/api/me/notices", headers=citizen)).json() == []


async def test_bad_requests_are_clear_and_store_nothing(
    client: httpx.AsyncClient, database: Database, world: World, toeslagen_key: str
) -> None:
    async with database.session() as session:
        party = await make_party(session)
        other_case = await make_case(session, party, agency_id="rdw")
        await consent(session, party, world.topic, True)
    headers = bearer(toeslagen_key)
    cases = [
        ({"bsn": "999999990"}, "identifier"),
        ({"bsn": "123"}, "BSN"),
        ({"topic": "licence_expiry"}, "licence_expiry"),
        ({"template": "nope"}, "nope"),
        ({"journey_id": "no-such-journey"}, "no-such-journey"),
        ({"case_id": str(other_case.id)}, "case"),
        ({"personalisation": {"allowance": "huurtoeslag"}}, "start"),
        ({"escalate_after_days": 3}, "important"),
    ]
    for change, named in cases:
        refused = await client.post(
            "/api/notices", json={**notice(party), **change}, headers=headers
        )
        assert refused.status_code == 422, (change, refused.text)
        assert named in refused.json()["detail"], (change, refused.json())
    async with database.session() as session:
        assert (await session.exec(select(OutboxItem))).all() == []
    citizen = bearer(await token_for(database, "citizen", party.id))
    forbidden = await client.post("/api/notices", json=notice(party), headers=citizen)
    assert forbidden.status_code == 403


async def test_citizen_inbox_and_read_marker(
    client: httpx.AsyncClient, database: Database, world: World, toeslagen_key: str
) -> None:
    async with database.session() as session:
        party = await make_party(session, name="Anna <b>Bakker</b>", email="anna@example.nl")
        other = await make_party(session)
        await consent(session, party, world.topic, True)
    posted = await client.post("/api/notices", json=notice(party), headers=bearer(toeslagen_key))
    assert (posted.json()["status"], posted.json()["channel"]) == ("delivered", "portal")
    notice_id = posted.json()["id"]

    citizen = bearer(await token_for(database, "citizen", party.id))
    [shown] = (await client.get("/api/me/notices", headers=citizen)).json()
    assert shown["subject"] == "Recht op huurtoeslag"
    assert shown["body"] == (
        "Beste Anna <b>Bakker</b>, u heeft mogelijk recht op huurtoeslag vanaf 1 april."
    )
    assert shown["read_at"] is None

    stranger = bearer(await token_for(database, "citizen", other.id))
    assert (
        await client.post(f"/api/me/notices/{notice_id}/read", headers=stranger)
    ).status_code == 404
    assert (await client.get("/api/me/notices", headers=stranger)).json() == []

    first = await client.post(f"/api/me/notices/{notice_id}/read", headers=citizen)
    assert first.status_code == 200 and first.json()["read_at"] is not None
    second = await client.post(f"/api/me/notices/{notice_id}/read", headers=citizen)
    assert second.json()["read_at"] == first.json()["read_at"]
    status = await client.get(f"/api/notices/{notice_id}", headers=bearer(toeslagen_key))
    assert status.json()["read_at"] == first.json()["read_at"]
