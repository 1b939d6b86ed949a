"""Subscribing: who may, which URLs and event types, the secret shown once, agencies apart."""

from __future__ import annotations

import httpx

from hub.db import Database
from tests.builders import bearer, key_for, make_agency, make_party, make_staff, token_for

STATUS = "nl.interactionhub.notice.status-changed"
REPLY = "nl.interactionhub.case.message-received"


async def setup_agencies(database: Database) -> tuple[str, str]:
    async with database.session() as session:
        await make_agency(session, "toeslagen")
        await make_agency(session, "rdw")
    return await key_for(database, "toeslagen"), await key_for(database, "rdw")


async def test_subscribe_shows_the_secret_once(
    client: httpx.AsyncClient, database: Database
) -> None:
    key, _ = await setup_agencies(database)
    answer = await client.post(
        "/api/webhook-subscriptions",
        json={"url": "https://zaken.toeslagen.example/hooks", "event_types": [STATUS, REPLY]},
        headers=bearer(key),
    )
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["secret"].startswith("whsec_")
    assert created["active"] is True
    assert sorted(created["event_types"]) == sorted([STATUS, REPLY])

    listed = await client.get("/api/webhook-subscriptions", headers=bearer(key))
    assert [s["id"] for s in listed.json()] == [created["id"]]
    assert created["secret"] not in listed.text
    assert "secret" not in listed.json()[0]


async def test_bad_urls_and_event_types_are_refused(
    client: httpx.AsyncClient, database: Database
) -> None:
    key, _ = await setup_agencies(database)
    for url in (
        "http://zaken.toeslagen.example/hooks",
        "ftp://zaken.toeslagen.example/hooks",
        "https://user:pw@zaken.toeslagen.example/hooks",
        "https://zaken.toeslagen.example/hooks\r\nX-Evil: 1",
        "not a url",
    ):
        answer = await client.post(
            "/api/webhook-subscriptions",
            json={"url": url, "event_types": [STATUS]},
            headers=bearer(key),
        )
        assert answer.status_code == 422, url
        assert answer.headers["content-type"] == "application/problem+json"
    unknown = await client.post(
        "/api/webhook-subscriptions",
        json={"url": "https://a.example/h", "event_types": ["com.example.anything"]},
        headers=bearer(key),
    )
    assert unknown.status_code == 422
    none = await client.post(
        "/api/webhook-subscriptions",
        json={"url": "https://a.example/h", "event_types": []},
        headers=bearer(key),
    )
    assert none.status_code == 422
    # Plain http to this machine is fine in test (and development) only.
    local = await client.post(
        "/api/webhook-subscriptions",
        json={"url": "http://127.0.0.1:9/hooks", "event_types": [STATUS]},
        headers=bearer(key),
    )
    assert local.status_code == 201


async def test_only_the_agency_system_or_its_admins(
    client: httpx.AsyncClient, database: Database
) -> None:
    await setup_agencies(database)
    async with database.session() as session:
        admin = await make_staff(session, "toeslagen", email="admin@t.example", role="admin")
        agent = await make_staff(session, "toeslagen", email="agent@t.example", role="agent")
        party = await make_party(session)
    body = {"url": "https://zaken.toeslagen.example/hooks", "event_types": [STATUS]}
    as_admin = await client.post(
        "/api/webhook-subscriptions",
        json=body,
        headers=bearer(await token_for(database, "staff", admin.id)),
    )
    assert as_admin.status_code == 201
    as_agent = await client.post(
        "/api/webhook-subscriptions",
        json=body,
        headers=bearer(await token_for(database, "staff", agent.id)),
    )
    assert as_agent.status_code == 403
    as_citizen = await client.post(
        "/api/webhook-subscriptions",
        json=body,
        headers=bearer(await token_for(database, "citizen", party.id)),
    )
    assert as_citizen.status_code == 403
    anonymous = await client.post("/api/webhook-subscriptions", json=body)
    assert anonymous.status_code == 401


async def test_delete_deactivates_and_other_agencies_get_404(
    client: httpx.AsyncClient, database: Database
) -> None:
    key, other_key = await setup_agencies(database)
    created = (
        await client.post(
            "/api/webhook-subscriptions",
            json={"url": "https://zaken.toeslagen.example/hooks", "event_types": [STATUS]},
            headers=bearer(key),
        )
    ).json()
    path = f"/api/webhook-subscriptions/{created['id']}"
    assert (await client.delete(path, headers=bearer(other_key))).status_code == 404
    assert (await client.get("/api/webhook-subscriptions", headers=bearer(other_key))).json() == []

    ended = await client.delete(path, headers=bearer(key))
    assert ended.status_code == 200
    assert ended.json()["active"] is False
    listed = (await client.get("/api/webhook-subscriptions", headers=bearer(key))).json()
    assert listed[0]["active"] is False
