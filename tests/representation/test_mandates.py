"""Mandates over the API, on SQLite and PostgreSQL: given by BSN and name (the same refusal
for an unknown BSN and a wrong name), limited to journeys and days, listed from both sides,
and revoked at once — the representative loses the cases that very request."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest

from hub.clock import local_today
from hub.db import Database
from hub.models import Party
from hub.parties.mandates import same_name
from tests.builders import bearer, make_agency, make_case, make_party, next_bsn, token_for


@pytest.fixture
async def people(database: Database) -> dict[str, Any]:
    """Anna, who has a question case and a rent allowance case, and Bram, her neighbour."""
    async with database.session() as session:
        await make_agency(session, "toeslagen", activities=("vragen-beantwoorden",))
        anna = await make_party(session, "Anna de Boer")
        bram = await make_party(session, "Bram Çelik")
        question = await make_case(session, anna)
        allowance = await make_case(session, anna, journey="huurtoeslag")
    return {
        "anna": anna,
        "bram": bram,
        "question": question.id,
        "allowance": allowance.id,
        "anna_token": bearer(await token_for(database, "citizen", anna.id)),
        "bram_token": bearer(await token_for(database, "citizen", bram.id)),
    }


def grant(bram: Party, **extra: Any) -> dict[str, Any]:
    return {"representative_bsn": bram.bsn, "representative_name": bram.name, **extra}


async def test_a_mandate_for_one_journey_shows_the_representative_those_cases_only(
    client: httpx.AsyncClient, people: dict[str, Any]
) -> None:
    anna, bram = people["anna"], people["bram"]
    given = await client.post(
        "/api/me/mandates",
        headers=people["anna_token"],
        json=grant(bram, representative_name="bram celik", journeys=["vraag"]),
    )
    assert given.status_code == 201, given.text
    mandate = given.json()
    assert mandate["party"] == {"id": str(anna.id), "name": "Anna de Boer"}
    assert mandate["representative"] == {"id": str(bram.id), "name": "Bram Çelik"}
    assert mandate["journeys"] == ["vraag"] and mandate["state"] == "active"
    assert mandate["valid_until"] is None and mandate["revoked_at"] is None

    theirs = await client.get(
        "/api/me/cases", params={"party": str(anna.id)}, headers=people["bram_token"]
    )
    assert [case["id"] for case in theirs.json()] == [str(people["question"])]
    allowance = await client.get(f"/api/cases/{people['allowance']}", headers=people["bram_token"])
    assert allowance.status_code == 404

    both = [
        (await client.get("/api/me/mandates", headers=people[who])).json()
        for who in ("anna_token", "bram_token")
    ]
    assert [m["id"] for m in both[0]["granted"]] == [mandate["id"]] and both[0]["received"] == []
    assert [m["id"] for m in both[1]["received"]] == [mandate["id"]] and both[1]["granted"] == []


async def test_revoking_takes_effect_at_once(
    client: httpx.AsyncClient, people: dict[str, Any]
) -> None:
    mandate = (
        await client.post(
            "/api/me/mandates", headers=people["anna_token"], json=grant(people["bram"])
        )
    ).json()
    case = f"/api/cases/{people['question']}"
    assert (await client.get(case, headers=people["bram_token"])).status_code == 200

    revoked = await client.post(
        f"/api/me/mandates/{mandate['id']}/revoke", headers=people["anna_token"]
    )
    assert revoked.status_code == 200
    assert revoked.json()["state"] == "revoked" and revoked.json()["revoked_at"] is not None

    assert (await client.get(case, headers=people["bram_token"])).status_code == 404
    mine = await client.get(
        "/api/me/cases", params={"party": str(people["anna"].id)}, headers=people["bram_token"]
    )
    assert mine.status_code == 404
    again = await client.post(
        f"/api/me/mandates/{mandate['id']}/revoke", headers=people["anna_token"]
    )
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]  # the first one stands


async def test_only_the_two_parties_of_a_mandate_see_or_revoke_it(
    client: httpx.AsyncClient, database: Database, people: dict[str, Any]
) -> None:
    mandate = (
        await client.post(
            "/api/me/mandates", headers=people["anna_token"], json=grant(people["bram"])
        )
    ).json()
    async with database.session() as session:
        carl = await make_party(session, "Carl")
    stranger = bearer(await token_for(database, "citizen", carl.id))
    revoke = f"/api/me/mandates/{mandate['id']}/revoke"
    assert (await client.post(revoke, headers=stranger)).status_code == 404
    assert (
        await client.post(f"/api/me/mandates/{uuid.uuid4()}/revoke", headers=stranger)
    ).status_code == 404
    # The representative may step back himself.
    assert (await client.post(revoke, headers=people["bram_token"])).json()["state"] == "revoked"


async def test_an_unknown_bsn_and_a_wrong_name_get_the_same_answer(
    client: httpx.AsyncClient, people: dict[str, Any]
) -> None:
    bram = people["bram"]
    wrong_name = await client.post(
        "/api/me/mandates",
        headers=people["anna_token"],
        json=grant(bram, representative_name="Bram Jansen"),
    )
    unknown = await client.post(
        "/api/me/mandates",
        headers=people["anna_token"],
        json=grant(bram, representative_bsn=next_bsn()),
    )
    assert wrong_name.status_code == unknown.status_code == 422
    assert wrong_name.json()["detail"] == unknown.json()["detail"]
    assert wrong_name.json()["reason"] == unknown.json()["reason"] == "no_match"
    mine = (await client.get("/api/me/mandates", headers=people["anna_token"])).json()
    assert mine["granted"] == []


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"representative_bsn": "123456789"}, "bsn_invalid"),
        ({"journeys": []}, "no_journeys"),
        ({"journeys": ["no-such-journey"]}, "unknown_journey"),
        ({"valid_from": "2020-01-01"}, "starts_in_the_past"),
    ],
)
async def test_a_mandate_that_cannot_be_is_refused_with_its_reason(
    client: httpx.AsyncClient, people: dict[str, Any], extra: dict[str, Any], reason: str
) -> None:
    refused = await client.post(
        "/api/me/mandates", headers=people["anna_token"], json=grant(people["bram"], **extra)
    )
    assert refused.status_code == 422 and refused.json()["reason"] == reason


async def test_oneself_and_a_backwards_period_are_refused(
    client: httpx.AsyncClient, people: dict[str, Any]
) -> None:
    anna = people["anna"]
    yourself = await client.post("/api/me/mandates", headers=people["anna_token"], json=grant(anna))
    assert yourself.json()["reason"] == "yourself"
    today = local_today("Europe/Amsterdam")
    backwards = await client.post(
        "/api/me/mandates",
        headers=people["anna_token"],
        json=grant(
            people["bram"],
            valid_from=str(today + dt.timedelta(days=5)),
            valid_until=str(today + dt.timedelta(days=4)),
        ),
    )
    assert backwards.json()["reason"] == "ends_before_it_starts"


async def test_a_mandate_from_a_later_day_is_not_yet_in_force(
    client: httpx.AsyncClient, people: dict[str, Any]
) -> None:
    today = local_today("Europe/Amsterdam")
    later = await client.post(
        "/api/me/mandates",
        headers=people["anna_token"],
        json=grant(
            people["bram"],
            valid_from=str(today + dt.timedelta(days=2)),
            valid_until=str(today + dt.timedelta(days=2)),
        ),
    )
    assert later.json()["state"] == "upcoming"
    # One day long: from the start of that day until the start of the next, in Amsterdam.
    start = dt.datetime.fromisoformat(later.json()["valid_from"])
    end = dt.datetime.fromisoformat(later.json()["valid_until"])
    assert dt.timedelta(hours=23) <= end - start <= dt.timedelta(hours=25)
    case = f"/api/cases/{people['question']}"
    assert (await client.get(case, headers=people["bram_token"])).status_code == 404


def test_names_match_as_people_type_them() -> None:
    assert same_name("  bram   CELIK ", "Bram Çelik")
    assert same_name("Anne-Marie de Vries", "anne marie de vries")
    assert not same_name("Bram", "Bram Çelik")
    assert not same_name("", "")
