"""Idempotency-Key under load, on SQLite and PostgreSQL, held to what ``hub.idempotency``
promises: a keyed agency POST has one effect however often it is sent, every replay is the
first answer byte for byte, requests that race for one key run it once (the others get the
answer or a 409 "still being processed"), and one agency's key never replays another's.

The POSTs are a notice (``POST /api/notices``; a notice also has its own dedupe, which
answers a repeat 200 where the key replays the first 201) and a new case (``POST
/api/cases``, which only the key keeps from being made twice)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import func, select

from hub.config import Settings
from hub.db import Database
from hub.models import Case, Notice, OutboxItem, Party
from hub.notices.service import save_template
from tests.builders import bearer, key_for, make_agency, make_party
from tests.notices.conftest import PERSONALISATION, World, build_world, consent

URL = "/api/notices"
STILL_RUNNING = "still being processed"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The test settings without the rate limit, which a hundred replays would reach."""
    return Settings(
        environment="test", data_dir=tmp_path, run_worker=False, rate_limit_per_minute=0
    )


@pytest.fixture
async def world(database: Database) -> World:
    async with database.session() as session:
        built = await build_world(session)
        # rdw's own template under the same code as toeslagen's, for the same key and body.
        await save_template(
            session,
            agency_id="rdw",
            code="rent",
            channel="email",
            language="nl",
            subject="Uw rijbewijs",
            body="Uw rijbewijs verloopt op {{ start }}.",
        )
    return built


@pytest.fixture
async def party(database: Database, world: World) -> Party:
    async with database.session() as session:
        anna = await make_party(session, email="anna@example.nl", preferred_channel="email")
        await consent(session, anna, world.topic, True)
        await consent(session, anna, world.rdw_topic, True)
    return anna


def notice(party: Party, topic: str = "allowances") -> dict[str, Any]:
    return {
        "bsn": party.bsn,
        "topic": topic,
        "template": "rent",
        "personalisation": PERSONALISATION,
    }


def keyed(api_key: str, idempotency_key: str) -> dict[str, str]:
    return {**bearer(api_key), "Idempotency-Key": idempotency_key}


async def effects(database: Database, agency_id: str | None = None) -> tuple[int, int]:
    """How many notices (of the agency) there are, and how many mails are queued for them."""
    async with database.session() as session:
        notices = select(func.count()).select_from(Notice)
        mails = select(func.count()).select_from(OutboxItem).where(OutboxItem.channel == "email")
        if agency_id is not None:
            notices = notices.where(Notice.agency_id == agency_id)
        return (await session.exec(notices)).one(), (await session.exec(mails)).one()


def same_answer(first: httpx.Response, again: httpx.Response) -> None:
    assert again.status_code == first.status_code
    assert again.content == first.content  # byte for byte
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers.get("location") == first.headers.get("location")


async def test_a_hundred_replays_of_a_notice_send_one_and_answer_the_same_bytes(
    client: httpx.AsyncClient, database: Database, world: World, party: Party
) -> None:
    headers = keyed(await key_for(database, "toeslagen"), "notice-2026-03-0001")
    first = await client.post(URL, json=notice(party), headers=headers)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    for _ in range(100):
        again = await client.post(URL, json=notice(party), headers=headers)
        same_answer(first, again)
        assert again.headers["idempotent-replayed"] == "true"
    assert await effects(database) == (1, 1)
    # Without the key the notice's own dedupe answers, and differently: the replays above
    # were the key's.
    unkeyed = await client.post(
        URL, json=notice(party), headers=bearer(headers["Authorization"][7:])
    )
    assert unkeyed.status_code == 200
    assert await effects(database) == (1, 1)


async def cases_of(database: Database, agency_id: str) -> int:
    async with database.session() as session:
        query = select(func.count()).select_from(Case).where(Case.agency_id == agency_id)
        return int((await session.exec(query)).one())


@pytest.mark.parametrize("kind", ["notice", "case"])
async def test_fifty_requests_at_once_with_one_key_run_once(
    client: httpx.AsyncClient, database: Database, world: World, party: Party, kind: str
) -> None:
    if kind == "notice":
        url, body, agency = URL, notice(party), "toeslagen"
    else:
        async with database.session() as session:
            await make_agency(session, "uwv", activities=("vragen-beantwoorden",))
        url, agency = "/api/cases", "uwv"
        body = {"journey": "vraag", "party": {"bsn": party.bsn, "name": party.name}}
    headers = keyed(await key_for(database, agency), f"{kind}-at-once")
    before = await cases_of(database, agency)
    answers = await asyncio.gather(
        *(client.post(url, json=body, headers=headers) for _ in range(50))
    )
    assert {a.status_code for a in answers} <= {201, 409}, {a.text for a in answers}
    created = [a for a in answers if a.status_code == 201]
    assert created
    for answer in created[1:]:
        same_answer(created[0], answer)
    for conflict in (a for a in answers if a.status_code == 409):
        assert conflict.headers["content-type"] == "application/problem+json"
        assert STILL_RUNNING in conflict.json()["detail"]
    # Those told 409 retry, and get the one answer.
    same_answer(created[0], await client.post(url, json=body, headers=headers))
    if kind == "notice":
        assert await effects(database) == (1, 1)
    else:
        assert await cases_of(database, agency) == before + 1


async def test_one_key_string_at_two_agencies_is_two_notices_each_replayed_to_its_own(
    client: httpx.AsyncClient, database: Database, world: World, party: Party
) -> None:
    toeslagen = keyed(await key_for(database, "toeslagen"), "shared-key-1")
    rdw = keyed(await key_for(database, "rdw"), "shared-key-1")
    # At once: each agency's requests race only with their own.
    answers = await asyncio.gather(
        *(client.post(URL, json=notice(party), headers=toeslagen) for _ in range(10)),
        *(client.post(URL, json=notice(party, "licence_expiry"), headers=rdw) for _ in range(10)),
    )
    assert {a.status_code for a in answers} <= {201, 409}, {a.text for a in answers}
    at_toeslagen = [a for a in answers[:10] if a.status_code == 201]
    at_rdw = [a for a in answers[10:] if a.status_code == 201]
    assert at_toeslagen and at_rdw
    assert at_toeslagen[0].json()["id"] != at_rdw[0].json()["id"]
    assert await effects(database, "toeslagen") == (1, 2)
    assert await effects(database, "rdw") == (1, 2)
    same_answer(at_toeslagen[0], await client.post(URL, json=notice(party), headers=toeslagen))
    same_answer(
        at_rdw[0], await client.post(URL, json=notice(party, "licence_expiry"), headers=rdw)
    )


async def test_another_agency_sending_the_same_key_and_body_gets_its_own_answer(
    client: httpx.AsyncClient, database: Database, world: World, party: Party
) -> None:
    toeslagen = keyed(await key_for(database, "toeslagen"), "shared-key-2")
    rdw = keyed(await key_for(database, "rdw"), "shared-key-2")
    first = await client.post(URL, json=notice(party), headers=toeslagen)
    assert first.status_code == 201, first.text
    # rdw names toeslagen's topic with toeslagen's key string: rdw's own request runs, and
    # is refused as rdw's; toeslagen's answer (with its notice's id) is never replayed.
    theirs = await client.post(URL, json=notice(party), headers=rdw)
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.status_code != 201
    assert first.json()["id"] not in theirs.text
    assert await effects(database, "rdw") == (0, 1)
    same_answer(first, await client.post(URL, json=notice(party), headers=toeslagen))
