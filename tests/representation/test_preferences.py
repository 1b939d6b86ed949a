"""The citizen's preferences over the API, on SQLite and PostgreSQL: a channel only where the
citizen can be reached, every change kept with who made it and how, and staff of an agency
with a case of the party reading that history, logged."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import select

from hub.db import Database
from hub.models import AccessLogEntry, Party
from hub.parties.preferences import ChangedBy, PreferenceRefused, change_preferences
from tests.builders import (
    bearer,
    key_for,
    make_agency,
    make_case,
    make_party,
    make_staff,
    token_for,
)


@pytest.fixture
async def anna(database: Database) -> Party:
    async with database.session() as session:
        await make_agency(session, "toeslagen", activities=("vragen-beantwoorden",))
        await make_agency(session, "uwv", activities=("vragen-beantwoorden",))
        return await make_party(session, "Anna de Boer", email="anna@example.nl")


async def test_a_citizen_changes_her_preferences_and_reads_every_change_back(
    client: httpx.AsyncClient, database: Database, anna: Party
) -> None:
    me = bearer(await token_for(database, "citizen", anna.id))
    before = (await client.get("/api/me/preferences", headers=me)).json()
    assert before == {
        "channel": "portal",
        "language": "nl",
        "needs": [],
        "reachable_channels": ["portal", "email"],
    }

    changed = await client.put(
        "/api/me/preferences",
        headers=me,
        json={"channel": "email", "language": "en", "needs": ["plain_language"]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["channel"] == "email" and changed.json()["needs"] == ["plain_language"]
    # Only what is given changes; the same answer again records nothing.
    await client.put("/api/me/preferences", headers=me, json={"language": "en"})

    history = (await client.get("/api/me/preferences/history", headers=me)).json()
    assert sorted((h["preference"], h["before"], h["after"]) for h in history) == [
        ("channel", "portal", "email"),
        ("language", "nl", "en"),
        ("needs", [], ["plain_language"]),
    ]
    assert {(h["changed_by_kind"], h["changed_by_name"], h["source"]) for h in history} == {
        ("citizen", "Anna de Boer", "api")
    }


@pytest.mark.parametrize(
    ("wanted", "reason"),
    [
        ({"channel": "sms"}, "no_phone"),
        ({"channel": "letter"}, "no_postal_address"),
        ({"channel": "pigeon"}, "unknown_channel"),
        ({"language": "fr"}, "unknown_language"),
        ({"needs": ["sign_language"]}, "unknown_need"),
        ({"needs": ["no_digital_contact"]}, "digital_channel_without_digital_contact"),
    ],
)
async def test_a_preference_the_hub_cannot_honour_is_refused_and_nothing_changes(
    client: httpx.AsyncClient,
    database: Database,
    anna: Party,
    wanted: dict[str, object],
    reason: str,
) -> None:
    me = bearer(await token_for(database, "citizen", anna.id))
    refused = await client.put("/api/me/preferences", headers=me, json=wanted)
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["reason"] == reason
    assert (await client.get("/api/me/preferences/history", headers=me)).json() == []


async def test_an_unverified_address_is_not_a_channel(database: Database) -> None:
    async with database.session() as session:
        bram = await make_party(
            session, "Bram", email="bram@example.nl", phone="+31612345678", verified=False
        )
        for channel, reason in (("email", "no_email"), ("sms", "no_phone")):
            with pytest.raises(PreferenceRefused) as refused:
                await change_preferences(
                    session,
                    bram,
                    channel=channel,
                    changed_by=ChangedBy("citizen", str(bram.id), bram.name),
                    source="portal",
                )
            assert refused.value.reason == reason
        # Letters only, with a postal address: the one channel left for no digital contact.
        bram.postal_address = "Oudegracht 1\n3511 AB Utrecht"
        changes = await change_preferences(
            session,
            bram,
            channel="letter",
            needs=["no_digital_contact"],
            changed_by=ChangedBy("staff", "s-1", "Sanne de Wit"),
            source="desk",
        )
        assert [(c.preference, c.after, c.source) for c in changes] == [
            ("channel", "letter", "desk"),
            ("needs", ["no_digital_contact"], "desk"),
        ]


async def test_staff_of_an_agency_with_a_case_read_the_history_and_it_is_logged(
    client: httpx.AsyncClient, database: Database, anna: Party
) -> None:
    async with database.session() as session:
        staff = await make_staff(session, "toeslagen")
        other_staff = await make_staff(session, "uwv")
        await make_case(session, anna, agency_id="toeslagen")
    me = bearer(await token_for(database, "citizen", anna.id))
    await client.put("/api/me/preferences", headers=me, json={"channel": "email"})

    path = f"/api/parties/{anna.id}/preferences/history"
    read = await client.get(path, headers=bearer(await token_for(database, "staff", staff.id)))
    assert read.status_code == 200
    assert [(h["preference"], h["after"]) for h in read.json()] == [("channel", "email")]
    system = await client.get(path, headers=bearer(await key_for(database, "toeslagen")))
    assert system.status_code == 200
    # An agency without a case of hers learns nothing, not even that she exists.
    outsider = bearer(await token_for(database, "staff", other_staff.id))
    assert (await client.get(path, headers=outsider)).status_code == 404
    assert (await client.get(path, headers=me)).status_code == 403

    async with database.session() as session:
        log = (
            await session.exec(select(AccessLogEntry).where(AccessLogEntry.party_id == anna.id))
        ).all()
    assert sorted((e.actor_kind, e.data) for e in log) == [
        ("agency", "preference_history"),
        ("staff", "preference_history"),
    ]
    assert all(e.processing_activity_id is not None and e.case_id is not None for e in log)


async def test_staff_change_a_preference_at_the_desk_and_the_citizen_reads_who_did(
    client: httpx.AsyncClient, database: Database, anna: Party
) -> None:
    async with database.session() as session:
        staff = await make_staff(session, "toeslagen", name="Sanne de Wit")
        outsider = await make_staff(session, "uwv")
        await make_case(session, anna, agency_id="toeslagen")
    path = f"/api/parties/{anna.id}/preferences"
    desk = bearer(await token_for(database, "staff", staff.id))
    changed = await client.put(path, headers=desk, json={"language": "en"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["language"] == "en"
    refused = await client.put(path, headers=desk, json={"channel": "sms"})
    assert refused.status_code == 422 and refused.json()["reason"] == "no_phone"
    stranger = bearer(await token_for(database, "staff", outsider.id))
    assert (await client.put(path, headers=stranger, json={"language": "nl"})).status_code == 404

    me = bearer(await token_for(database, "citizen", anna.id))
    history = (await client.get("/api/me/preferences/history", headers=me)).json()
    assert [(h["changed_by_kind"], h["changed_by_name"], h["source"]) for h in history] == [
        ("staff", "Sanne de Wit", "desk")
    ]
    async with database.session() as session:
        log = (
            await session.exec(select(AccessLogEntry).where(AccessLogEntry.party_id == anna.id))
        ).all()
    assert [(e.actor_kind, e.action, e.data) for e in log] == [("staff", "change", "preferences")]
