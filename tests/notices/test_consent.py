"""Consent topics and a party's consents over the API: who may register and read them, and
the history every change leaves."""

from __future__ import annotations

import httpx
from sqlmodel import col, select

from hub.db import Database
from hub.models import AccessLogEntry, Consent, ProcessingActivity
from tests.builders import bearer, make_mandate, make_party, make_staff, token_for
from tests.notices.conftest import World


async def test_agency_registers_topics_under_its_register(
    client: httpx.AsyncClient, database: Database, world: World, toeslagen_key: str
) -> None:
    topic = {
        "code": "benefits",
        "title": {"nl": "Uitkeringen", "en": "Benefits"},
        "processing_activity": "proactive_info",
    }
    made = await client.post("/api/consent-topics", json=topic, headers=bearer(toeslagen_key))
    assert made.status_code == 201, made.text
    assert made.json()["processing_activity"] == "proactive_info"

    again = await client.post("/api/consent-topics", json=topic, headers=bearer(toeslagen_key))
    assert again.status_code == 409
    # Another agency's activity is not in this agency's register.
    foreign = {**topic, "code": "other", "processing_activity": "reminders"}
    refused = await client.post("/api/consent-topics", json=foreign, headers=bearer(toeslagen_key))
    assert refused.status_code == 422
    assert "reminders" in refused.json()["detail"]

    listed = await client.get("/api/consent-topics", headers=bearer(toeslagen_key))
    assert [t["code"] for t in listed.json()] == ["allowances", "benefits"]


async def test_only_admins_and_supervisors_among_staff_register_topics(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    async with database.session() as session:
        agent = await make_staff(session, "toeslagen", role="agent")
        admin = await make_staff(session, "toeslagen", role="admin")
    topic = {"code": "x", "title": {"nl": "X", "en": "X"}, "processing_activity": "proactive_info"}
    as_agent = await client.post(
        "/api/consent-topics",
        json=topic,
        headers=bearer(await token_for(database, "staff", agent.id)),
    )
    assert as_agent.status_code == 403
    as_admin = await client.post(
        "/api/consent-topics",
        json=topic,
        headers=bearer(await token_for(database, "staff", admin.id)),
    )
    assert as_admin.status_code == 201


async def test_citizen_gives_and_withdraws_consent_with_history(
    client: httpx.AsyncClient, database: Database, world: World, toeslagen_key: str
) -> None:
    async with database.session() as session:
        party = await make_party(session)
    citizen = bearer(await token_for(database, "citizen", party.id))
    topic_url = f"/api/me/consents/{world.topic.id}"

    before = await client.get("/api/me/consents", headers=citizen)
    # Every topic of every agency, none answered yet.
    assert [(c["agency_id"], c["code"], c["granted"]) for c in before.json()] == [
        ("rdw", "licence_expiry", False),
        ("toeslagen", "allowances", False),
    ]
    assert all(c["answered"] is None for c in before.json())

    yes = await client.put(topic_url, json={"granted": True}, headers=citizen)
    assert yes.status_code == 200 and yes.json()["granted"] is True
    no = await client.put(topic_url, json={"granted": False}, headers=citizen)
    assert no.json()["granted"] is False

    mine = {c["code"]: c for c in (await client.get("/api/me/consents", headers=citizen)).json()}
    assert mine["allowances"]["granted"] is False
    assert mine["allowances"]["answered"]["source"] == "portal"
    assert mine["licence_expiry"]["answered"] is None

    history = await client.get(
        f"/api/parties/{party.id}/consents/{world.topic.id}/history", headers=bearer(toeslagen_key)
    )
    assert [(h["granted"], h["recorded_by_kind"]) for h in history.json()] == [
        (True, "citizen"),
        (False, "citizen"),
    ]
    async with database.session() as session:
        rows = (await session.exec(select(Consent).where(Consent.party_id == party.id))).all()
    assert len(rows) == 2  # a change is a new row, never an update


async def test_agency_reads_only_its_own_topics_and_the_read_is_logged(
    client: httpx.AsyncClient,
    database: Database,
    world: World,
    toeslagen_key: str,
    rdw_key: str,
) -> None:
    async with database.session() as session:
        party = await make_party(session)
    citizen = bearer(await token_for(database, "citizen", party.id))
    for topic in (world.topic, world.rdw_topic):
        await client.put(f"/api/me/consents/{topic.id}", json={"granted": True}, headers=citizen)

    read = await client.get(f"/api/parties/{party.id}/consents", headers=bearer(rdw_key))
    assert [c["code"] for c in read.json()] == ["licence_expiry"]
    # Another agency's topic's history is not there for RDW.
    other = await client.get(
        f"/api/parties/{party.id}/consents/{world.topic.id}/history", headers=bearer(rdw_key)
    )
    assert other.status_code == 404
    async with database.session() as session:
        logged = (
            await session.exec(
                select(AccessLogEntry, ProcessingActivity)
                .join(
                    ProcessingActivity,
                    col(ProcessingActivity.id) == col(AccessLogEntry.processing_activity_id),
                )
                .where(AccessLogEntry.party_id == party.id)
            )
        ).all()
    assert [(e.agency_id, e.data, a.code) for e, a in logged] == [("rdw", "consents", "reminders")]


async def test_representative_sets_consent_for_whom_they_represent(
    client: httpx.AsyncClient, database: Database, world: World, toeslagen_key: str
) -> None:
    async with database.session() as session:
        mother = await make_party(session)
        son = await make_party(session)
        stranger = await make_party(session)
        await make_mandate(session, representative=son, party=mother)
    son_token = bearer(await token_for(database, "citizen", son.id))
    url = f"/api/me/consents/{world.topic.id}?party={mother.id}"
    done = await client.put(url, json={"granted": True}, headers=son_token)
    assert done.status_code == 200, done.text

    history = await client.get(
        f"/api/parties/{mother.id}/consents/{world.topic.id}/history",
        headers=bearer(toeslagen_key),
    )
    assert [h["recorded_by_kind"] for h in history.json()] == ["representative"]
    refused = await client.put(
        f"/api/me/consents/{world.topic.id}?party={stranger.id}",
        json={"granted": True},
        headers=son_token,
    )
    assert refused.status_code == 404
