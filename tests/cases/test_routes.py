"""The case API on SQLite and PostgreSQL: opening, acting, reading, and who may see what."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import httpx
import pytest

from hub.db import Database
from tests.builders import (
    bearer,
    key_for,
    make_agency,
    make_mandate,
    make_party,
    make_staff,
    next_bsn,
    token_for,
)


@pytest.fixture
async def world(database: Database) -> dict[str, object]:
    """Two agencies with a key each, a staff member at toeslagen, and two citizens."""
    async with database.session() as session:
        await make_agency(session, "toeslagen", activities=("toeslagen-aanvraag", "balie-zoeken"))
        await make_agency(session, "uwv", activities=("uwv-ww", "balie-zoeken"))
        await make_agency(session, "gemeente-utrecht", activities=("schuldhulpverlening",))
        await make_agency(session, "belastingdienst", activities=("schuldhulpverlening",))
        await make_agency(session, "rdw", activities=("rdw-rijbewijs",))
        staff = await make_staff(session, "toeslagen", name="Sanne de Wit")
        uwv_staff = await make_staff(session, "uwv", name="Lotte Visser")
        anna = await make_party(session, "Anna", email="anna@example.nl")
        bram = await make_party(session, "Bram", email="bram@example.nl")
    return {
        "toeslagen_key": await key_for(database, "toeslagen"),
        "uwv_key": await key_for(database, "uwv"),
        "gemeente_key": await key_for(database, "gemeente-utrecht"),
        "belasting_key": await key_for(database, "belastingdienst"),
        "rdw_key": await key_for(database, "rdw"),
        "staff": await token_for(database, "staff", staff.id),
        "uwv_staff": await token_for(database, "staff", uwv_staff.id),
        "anna": anna,
        "anna_token": await token_for(database, "citizen", anna.id),
        "bram": bram,
        "bram_token": await token_for(database, "citizen", bram.id),
    }


async def open_for(
    client: httpx.AsyncClient, key: str, party: object, journey: str = "huurtoeslag"
) -> dict[str, object]:
    response = await client.post(
        "/api/cases",
        json={"journey": journey, "party": {"bsn": party.bsn, "name": party.name}},  # type: ignore[attr-defined]
        headers=bearer(key),
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_agency_opens_a_case_with_a_status_the_citizen_can_follow(
    client: httpx.AsyncClient, world: dict[str, object]
) -> None:
    case = await open_for(client, world["toeslagen_key"], world["anna"])  # type: ignore[arg-type]
    assert re.fullmatch(r"HU-\d{4}-000001", case["reference"])
    view = case["status_view"]
    assert view["stage_index"] == 1 and view["stage_count"] >= 3
    assert view["stages"][0]["state"] == "current"
    assert view["next"] and view["now"]
    expected = dt.date.fromisoformat(view["expected_completion"])
    assert expected - dt.date.fromisoformat(case["created_at"][:10]) >= dt.timedelta(days=55)

    mine = await client.get("/api/me/cases", headers=bearer(world["anna_token"]))  # type: ignore[arg-type]
    assert [c["reference"] for c in mine.json()] == [case["reference"]]
    assert mine.json()[0]["status_view"]["expected_completion"] == view["expected_completion"]


async def test_a_new_party_is_created_by_bsn_and_found_again(
    client: httpx.AsyncClient, world: dict[str, object]
) -> None:
    bsn = next_bsn()
    body = {"journey": "huurtoeslag", "party": {"bsn": bsn, "name": "Nieuw"}}
    first = await client.post("/api/cases", json=body, headers=bearer(world["toeslagen_key"]))  # type: ignore[arg-type]
    second = await client.post("/api/cases", json=body, headers=bearer(world["toeslagen_key"]))  # type: ignore[arg-type]
    assert first.status_code == second.status_code == 201
    assert first.json()["party_id"] == second.json()["party_id"]
    assert first.json()["reference"] != second.json()["reference"]


@pytest.mark.parametrize(
    ("party", "status", "needle"),
    [
        ({"bsn": "123456789", "name": "X"}, 422, "eleven-test"),
        ({"bsn": "12345678", "name": "X"}, 422, "BSN"),
        ({"name": "X"}, 422, "exactly one"),
    ],
)
async def test_bad_party_identifiers_are_refused_clearly(
    client: httpx.AsyncClient,
    world: dict[str, object],
    party: dict[str, str],
    status: int,
    needle: str,
) -> None:
    response = await client.post(
        "/api/cases",
        json={"journey": "huurtoeslag", "party": party},
        headers=bearer(world["toeslagen_key"]),  # type: ignore[arg-type]
    )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert needle in response.text


async def test_an_agency_cannot_open_another_agencys_journey(
    client: httpx.AsyncClient, world: dict[str, object]
) -> None:
    response = await client.post(
        "/api/cases",
        json={"journey": "huurtoeslag", "party": {"bsn": next_bsn(), "name": "X"}},
        headers=bearer(world["uwv_key"]),  # type: ignore[arg-type]
    )
    assert response.status_code == 403
    unknown = await client.post(
        "/api/cases",
        json={"journey": "no-such-journey", "party": {"bsn": next_bsn(), "name": "X"}},
        headers=bearer(world["uwv_key"]),  # type: ignore[arg-type]
    )
    assert unknown.status_code == 422 and "no-such-journey" in unknown.json()["detail"]


async def test_nobody_reads_a_case_that_is_not_theirs_and_the_refusal_reveals_nothing(
    client: httpx.AsyncClient, world: dict[str, object]
) -> None:
    case = await open_for(client, world["toeslagen_key"], world["anna"])  # type: ignore[arg-type]
    ghost = uuid.uuid4()
    for credential in ("bram_token", "uwv_key", "uwv_staff"):
        headers = bearer(world[credential])  # type: ignore[arg-type]
        for path in ("/api/cases/{}", "/api/cases/{}/events"):
            real = await client.get(path.format(case["id"]), headers=headers)
            missing = await client.get(path.format(ghost), headers=headers)
            assert real.status_code == missing.status_code == 404, credential
            assert {**real.json(), "instance": ""} == {**missing.json(), "instance": ""}
        act = await client.post(
            f"/api/cases/{case['id']}/actions", json={"kind": "withdraw"}, headers=headers
        )
        assert act.status_code == 404
    for credential in ("anna_token", "toeslagen_key", "staff"):
        ok = await client.get(f"/api/cases/{case['id']}", headers=bearer(world[credential]))  # type: ignore[arg-type]
        assert ok.status_code == 200, credential
    anonymous = await client.get(f"/api/cases/{case['id']}")
    assert anonymous.status_code == 401


async def test_participating_agencies_see_the_case_others_do_not(
    client: httpx.AsyncClient, world: dict[str, object]
) -> None:
    case = await open_for(client, world["gemeente_key"], world["anna"], "schuldhulp")  # type: ignore[arg-type]
    assert case["participating_agencies"] == ["belastingdienst", "uwv"]
    for key in ("belasting_key", "uwv_key"):
        seen = await client.get(f"/api/cases/{case['id']}", headers=bearer(world[key]))  # type: ignore[arg-type]
        assert seen.status_code == 200, key
    unseen = await client.get(f"/api/cases/{case['id']}", headers=bearer(world["rdw_key"]))  # type: ignore[arg-type]
    assert unseen.status_code == 404
    listed = await client.get("/api/cases", headers=bearer(world["belasting_key"]))  # type: ignore[arg-type]
    assert [c["id"] for c in listed.json()] == [case["id"]]


async def test_a_representative_acts_within_a_valid_mandate_only(
    client: httpx.AsyncClient, database: Database, world: dict[str, object]
) -> None:
    anna = world["anna"]
    huur = await open_for(client, world["toeslagen_key"], anna)  # type: ignore[arg-type]
    await open_for(client, world["uwv_key"], anna, "ww-uitkering")  # type: ignore[arg-type]
    async with database.session() as session:
        helper = await make_party(session, "Helper", email="helper@example.nl")
        expired = await make_party(session, "Expired", email="expired@example.nl")
        revoked = await make_party(session, "Revoked", email="revoked@example.nl")
        other_scope = await make_party(session, "Scoped", email="scoped@example.nl")
        await make_mandate(session, representative=helper, party=anna, journeys=["huurtoeslag"])  # type: ignore[arg-type]
        await make_mandate(
            session,
            representative=expired,
            party=anna,  # type: ignore[arg-type]
            valid_until=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
        )
        await make_mandate(session, representative=revoked, party=anna, revoked=True)  # type: ignore[arg-type]
        await make_mandate(
            session, representative=other_scope, party=anna, journeys=["ww-uitkering"]
        )  # type: ignore[arg-type]
    helper_token = await token_for(database, "citizen", helper.id)
    seen = await client.get(f"/api/cases/{huur['id']}", headers=bearer(helper_token))
    assert seen.status_code == 200
    withdrawn = await client.post(
        f"/api/cases/{huur['id']}/actions",
        json={"kind": "withdraw", "reason": "on behalf of Anna"},
        headers=bearer(helper_token),
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["result"] == "withdrawn"
    events = await client.get(f"/api/cases/{huur['id']}/events", headers=bearer(helper_token))
    assert any(e["actor_kind"] == "representative" for e in events.json()["events"])
    listed = await client.get(f"/api/me/cases?party={anna.id}", headers=bearer(helper_token))  # type: ignore[attr-defined]
    assert [c["id"] for c in listed.json()] == [huur["id"]]
    log = await client.get("/api/me/access-log", headers=bearer(world["anna_token"]))  # type: ignore[arg-type]
    assert any(e["who"] == "Helper" and e["actor_kind"] == "representative" for e in log.json())
    for party in (expired, revoked, other_scope):
        token = await token_for(database, "citizen", party.id)
        listing = await client.get(f"/api/me/cases?party={anna.id}", headers=bearer(token))  # type: ignore[attr-defined]
        if party is other_scope:  # sees the WW case the mandate covers, not the allowance
            assert [c["journey"] for c in listing.json()] == ["ww-uitkering"]
        else:
            assert listing.status_code == 404, party.name
        refused = await client.get(f"/api/cases/{huur['id']}", headers=bearer(token))
        assert refused.status_code == 404, party.name


async def test_actions_follow_the_journey_and_illegal_ones_name_stage_and_action(
    client: httpx.AsyncClient, world: dict[str, object]
) -> None:
    case = await open_for(client, world["toeslagen_key"], world["anna"])  # type: ignore[arg-type]
    path = f"/api/cases/{case['id']}/actions"
    staff = bearer(world["staff"])  # type: ignore[arg-type]
    illegal = await client.post(path, json={"kind": "decide", "result": "granted"}, headers=staff)
    assert illegal.status_code == 409
    assert case["stage"] in illegal.json()["detail"] and "decide" in illegal.json()["detail"]
    citizen = bearer(world["anna_token"])  # type: ignore[arg-type]
    refused = await client.post(path, json={"kind": "advance", "to": "x"}, headers=citizen)
    assert refused.status_code == 404
    asked = await client.post(
        path, json={"kind": "request_information", "what": "Huurcontract"}, headers=staff
    )
    assert asked.status_code == 200
    assert asked.json()["status"] == "waiting_for_citizen"
    assert asked.json()["status_view"]["citizen_deadline"] is not None
    answered = await client.post(
        path, json={"kind": "provide_information", "note": "Bijgevoegd"}, headers=citizen
    )
    assert answered.status_code == 200 and answered.json()["status"] == "open"
    bad = await client.post(path, json={"kind": "extend", "reason": "x"}, headers=staff)
    assert bad.status_code == 422


async def test_events_resume_after_a_sequence_number_and_hide_staff_notes_from_citizens(
    client: httpx.AsyncClient, world: dict[str, object]
) -> None:
    case = await open_for(client, world["toeslagen_key"], world["anna"])  # type: ignore[arg-type]
    staff = bearer(world["staff"])  # type: ignore[arg-type]
    note = await client.post(
        f"/api/cases/{case['id']}/notes", json={"text": "Bel eerst terug"}, headers=staff
    )
    assert note.status_code == 201 and note.json()["audience"] == "staff"
    await client.post(
        f"/api/cases/{case['id']}/actions",
        json={"kind": "request_information", "what": "Loonstrook"},
        headers=staff,
    )
    all_staff = (await client.get(f"/api/cases/{case['id']}/events", headers=staff)).json()
    seqs = [e["seq"] for e in all_staff["events"]]
    assert seqs == list(range(1, len(seqs) + 1))
    assert "note" in [e["kind"] for e in all_staff["events"]]
    citizen = bearer(world["anna_token"])  # type: ignore[arg-type]
    theirs = (await client.get(f"/api/cases/{case['id']}/events", headers=citizen)).json()
    assert "note" not in [e["kind"] for e in theirs["events"]]
    after = (await client.get(f"/api/cases/{case['id']}/events?after=2", headers=staff)).json()
    assert [e["seq"] for e in after["events"]] == seqs[2:]
    bad = await client.get(f"/api/cases/{case['id']}/events?after=-1", headers=staff)
    assert bad.status_code == 422
    citizen_note = await client.post(
        f"/api/cases/{case['id']}/notes", json={"text": "x"}, headers=citizen
    )
    assert citizen_note.status_code == 403


async def test_reads_are_logged_under_the_journeys_activity_and_the_citizen_reads_the_log(
    client: httpx.AsyncClient, world: dict[str, object]
) -> None:
    case = await open_for(client, world["toeslagen_key"], world["anna"])  # type: ignore[arg-type]
    await client.get(f"/api/cases/{case['id']}", headers=bearer(world["staff"]))  # type: ignore[arg-type]
    await client.get(f"/api/cases/{case['id']}", headers=bearer(world["anna_token"]))  # type: ignore[arg-type]
    log = await client.get("/api/me/access-log", headers=bearer(world["anna_token"]))  # type: ignore[arg-type]
    entries = log.json()
    staff_reads = [e for e in entries if e["who"] == "Sanne de Wit"]
    assert len(staff_reads) == 1
    assert staff_reads[0]["purpose"] == "toeslagen-aanvraag purpose"
    assert staff_reads[0]["case_reference"] == case["reference"]
    assert all(e["actor_kind"] != "citizen" for e in entries)  # her own reads are not "access"
    assert any(e["action"] == "change" and e["actor_kind"] == "agency" for e in entries)


async def test_a_desk_search_names_a_registered_purpose_and_shows_no_contents(
    client: httpx.AsyncClient, world: dict[str, object]
) -> None:
    case = await open_for(client, world["toeslagen_key"], world["anna"])  # type: ignore[arg-type]
    uwv_staff = bearer(world["uwv_staff"])  # type: ignore[arg-type]
    bsn = world["anna"].bsn  # type: ignore[attr-defined]
    unregistered = await client.post(
        "/api/parties/search", json={"bsn": bsn, "purpose": "curiosity"}, headers=uwv_staff
    )
    assert unregistered.status_code == 422 and "register" in unregistered.json()["detail"]
    found = await client.post(
        "/api/parties/search", json={"bsn": bsn, "purpose": "balie-zoeken"}, headers=uwv_staff
    )
    assert found.status_code == 200
    listing = found.json()["cases"]
    assert [c["reference"] for c in listing] == [case["reference"]]
    assert set(listing[0]) == {
        "id",
        "reference",
        "title",
        "agency",
        "agency_name",
        "stage",
        "status",
    }
    log = (await client.get("/api/me/access-log", headers=bearer(world["anna_token"]))).json()  # type: ignore[arg-type]
    assert any(e["action"] == "search" and e["who"] == "Lotte Visser" for e in log)
    # Finding the list does not open the case to another agency.
    refused = await client.get(f"/api/cases/{case['id']}", headers=uwv_staff)
    assert refused.status_code == 404
    agency_key = await client.post(
        "/api/parties/search",
        json={"bsn": bsn, "purpose": "balie-zoeken"},
        headers=bearer(world["uwv_key"]),  # type: ignore[arg-type]
    )
    assert agency_key.status_code == 403
