"""Idempotency-Key on agency POSTs, on SQLite and PostgreSQL: one effect per key, the answer
replayed, another body refused, keys scoped to the agency, server errors not kept, expiry."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlmodel import col, func, select, update

from hub.db import Database, utcnow
from hub.idempotency import middleware
from hub.models import Case, CaseEvent, IdempotencyKey
from tests.builders import bearer, key_for, make_agency, make_case, make_party, next_bsn


@pytest.fixture
async def world(database: Database) -> dict[str, Any]:
    """Two agencies with a key each, and a general question at toeslagen."""
    async with database.session() as session:
        await make_agency(session, "toeslagen", activities=("vragen-beantwoorden",))
        await make_agency(session, "uwv", activities=("vragen-beantwoorden",))
        party = await make_party(session, "Anna")
        case = await make_case(session, party)
    return {
        "case_id": str(case.id),
        "toeslagen": await key_for(database, "toeslagen"),
        "uwv": await key_for(database, "uwv"),
    }


def keyed(api_key: str, idempotency_key: str) -> dict[str, str]:
    return {**bearer(api_key), "Idempotency-Key": idempotency_key}


async def notes_on(database: Database, case_id: str) -> list[str]:
    async with database.session() as session:
        events = await session.exec(
            select(CaseEvent)
            .where(CaseEvent.case_id == uuid.UUID(case_id), CaseEvent.kind == "note")
            .order_by(col(CaseEvent.seq))
        )
        return [event.payload["text"] for event in events]


async def cases_of(database: Database, agency_id: str) -> int:
    async with database.session() as session:
        query = select(func.count()).select_from(Case).where(Case.agency_id == agency_id)
        return (await session.exec(query)).one()


async def test_a_hundred_replays_make_one_note_and_give_the_same_answer(
    client: httpx.AsyncClient, database: Database, world: dict[str, Any]
) -> None:
    url = f"/api/cases/{world['case_id']}/notes"
    headers = keyed(world["toeslagen"], "note-2026-001")
    first = await client.post(url, json={"text": "Called back."}, headers=headers)
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    for _ in range(100):
        again = await client.post(url, json={"text": "Called back."}, headers=headers)
        assert again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["content-type"] == first.headers["content-type"]
        assert again.headers["idempotent-replayed"] == "true"
    assert await notes_on(database, world["case_id"]) == ["Called back."]


async def test_without_the_header_every_post_has_its_effect(
    client: httpx.AsyncClient, database: Database, world: dict[str, Any]
) -> None:
    url = f"/api/cases/{world['case_id']}/notes"
    for _ in range(2):
        response = await client.post(
            url, json={"text": "Twice."}, headers=bearer(world["toeslagen"])
        )
        assert response.status_code == 201
    assert await notes_on(database, world["case_id"]) == ["Twice.", "Twice."]


async def test_fifty_concurrent_requests_with_one_key_run_once(
    client: httpx.AsyncClient, database: Database, world: dict[str, Any]
) -> None:
    url = f"/api/cases/{world['case_id']}/notes"
    headers = keyed(world["toeslagen"], "concurrent")
    responses = await asyncio.gather(
        *(client.post(url, json={"text": "Once."}, headers=headers) for _ in range(50))
    )
    statuses = {r.status_code for r in responses}
    assert statuses <= {201, 409}
    created = [r.json() for r in responses if r.status_code == 201]
    assert created and all(body == created[0] for body in created)
    for conflict in (r for r in responses if r.status_code == 409):
        assert conflict.headers["content-type"] == "application/problem+json"
        assert "still being processed" in conflict.json()["detail"]
    assert await notes_on(database, world["case_id"]) == ["Once."]


async def test_the_same_key_with_another_body_is_refused(
    client: httpx.AsyncClient, database: Database, world: dict[str, Any]
) -> None:
    url = f"/api/cases/{world['case_id']}/notes"
    headers = keyed(world["toeslagen"], "reused")
    assert (await client.post(url, json={"text": "First."}, headers=headers)).status_code == 201
    other = await client.post(url, json={"text": "Second."}, headers=headers)
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert "different request" in other.json()["detail"]
    assert await notes_on(database, world["case_id"]) == ["First."]


async def test_keys_are_scoped_to_the_agency(
    client: httpx.AsyncClient, database: Database, world: dict[str, Any]
) -> None:
    body = {"journey": "vraag", "party": {"bsn": next_bsn(), "name": "Bram"}}
    at_toeslagen = await client.post(
        "/api/cases", json=body, headers=keyed(world["toeslagen"], "shared-key")
    )
    at_uwv = await client.post("/api/cases", json=body, headers=keyed(world["uwv"], "shared-key"))
    assert at_toeslagen.status_code == at_uwv.status_code == 201
    assert "idempotent-replayed" not in at_uwv.headers
    assert at_uwv.json()["id"] != at_toeslagen.json()["id"]
    assert await cases_of(database, "toeslagen") == 2  # the fixture's question and this one
    assert await cases_of(database, "uwv") == 1


async def test_a_replay_keeps_the_error_the_first_request_got(
    client: httpx.AsyncClient, database: Database, world: dict[str, Any]
) -> None:
    url = f"/api/cases/{uuid.uuid4()}/notes"
    headers = keyed(world["toeslagen"], "no-such-case")
    first = await client.post(url, json={"text": "Lost."}, headers=headers)
    again = await client.post(url, json={"text": "Lost."}, headers=headers)
    assert first.status_code == again.status_code == 404
    assert again.json() == first.json()
    assert again.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("value", ["", '""', "x" * 256, "caf\u00e9"])
async def test_a_key_that_cannot_be_one_is_refused(
    client: httpx.AsyncClient, database: Database, world: dict[str, Any], value: str
) -> None:
    url = f"/api/cases/{world['case_id']}/notes"
    headers = {**bearer(world["toeslagen"]), "Idempotency-Key": value}
    headers_bytes = {k.encode(): v.encode() for k, v in headers.items()}
    response = await client.post(url, json={"text": "No."}, headers=headers_bytes)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert await notes_on(database, world["case_id"]) == []


async def test_a_quoted_key_of_255_characters_is_a_key(
    client: httpx.AsyncClient, database: Database, world: dict[str, Any]
) -> None:
    url = f"/api/cases/{world['case_id']}/notes"
    headers = keyed(world["toeslagen"], '"' + "k" * 255 + '"')
    for _ in range(2):
        assert (await client.post(url, json={"text": "Long."}, headers=headers)).status_code == 201
    assert await notes_on(database, world["case_id"]) == ["Long."]


async def test_citizens_and_staff_may_send_the_header_and_nothing_changes(
    client: httpx.AsyncClient, database: Database, world: dict[str, Any]
) -> None:
    response = await client.post(
        f"/api/cases/{world['case_id']}/notes",
        json={"text": "No."},
        headers={"Authorization": "Bearer not-a-session", "Idempotency-Key": "k"},
    )
    assert response.status_code == 401
    async with database.session() as session:
        assert (await session.exec(select(IdempotencyKey))).all() == []


async def test_a_server_error_is_not_kept_and_a_retry_runs_again(
    app: FastAPI, client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    runs = itertools.count(1)

    async def flaky() -> JSONResponse:
        run = next(runs)
        return JSONResponse({"run": run}, status_code=503 if run == 1 else 201)

    app.add_api_route("/api/test/flaky", flaky, methods=["POST"])
    headers = keyed(world["toeslagen"], "flaky")
    failed = await client.post("/api/test/flaky", json={}, headers=headers)
    assert failed.status_code == 503
    retried = await client.post("/api/test/flaky", json={}, headers=headers)
    assert (retried.status_code, retried.json()) == (201, {"run": 2})
    replayed = await client.post("/api/test/flaky", json={}, headers=headers)
    assert (replayed.status_code, replayed.json()) == (201, {"run": 2})


async def test_a_request_that_raises_releases_its_key(app: FastAPI, world: dict[str, Any]) -> None:
    runs = itertools.count(1)

    async def crashing() -> dict[str, int]:
        run = next(runs)
        if run == 1:
            raise RuntimeError("the handler broke")
        return {"run": run}

    app.add_api_route("/api/test/crashing", crashing, methods=["POST"], status_code=201)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
        headers = keyed(world["toeslagen"], "crashing")
        assert (await client.post("/api/test/crashing", headers=headers)).status_code == 500
        retried = await client.post("/api/test/crashing", headers=headers)
        assert (retried.status_code, retried.json()) == (201, {"run": 2})


async def test_an_expired_key_runs_the_request_again(
    client: httpx.AsyncClient, database: Database, world: dict[str, Any]
) -> None:
    url = f"/api/cases/{world['case_id']}/notes"
    headers = keyed(world["toeslagen"], "daily")
    assert (await client.post(url, json={"text": "Monday."}, headers=headers)).status_code == 201
    async with database.session() as session:
        await session.exec(
            update(IdempotencyKey).values(created_at=utcnow() - dt.timedelta(hours=25))
        )
    again = await client.post(url, json={"text": "Monday."}, headers=headers)
    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers
    assert await notes_on(database, world["case_id"]) == ["Monday.", "Monday."]


async def test_a_key_still_claimed_is_a_conflict_and_says_when_it_went_stale(
    client: httpx.AsyncClient, database: Database, world: dict[str, Any]
) -> None:
    url = f"/api/cases/{world['case_id']}/notes"
    async with database.session() as session:
        # What a request that is still running (or died before its answer was kept) leaves.
        session.add(IdempotencyKey(agency_id="toeslagen", key="held", request_hash=""))
    headers = keyed(world["toeslagen"], "held")
    running = await client.post(url, json={"text": "Held."}, headers=headers)
    assert running.status_code == 409
    assert "still being processed" in running.json()["detail"]
    async with database.session() as session:
        await session.exec(
            update(IdempotencyKey).values(created_at=utcnow() - dt.timedelta(minutes=30))
        )
    stale = await client.post(url, json={"text": "Held."}, headers=headers)
    assert stale.status_code == 409
    assert "may have taken effect" in stale.json()["detail"]
    assert await notes_on(database, world["case_id"]) == []


async def test_claims_purge_expired_keys_now_and_then(
    client: httpx.AsyncClient,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(middleware, "PURGE_EVERY", 1)
    async with database.session() as session:
        await make_agency(session, "toeslagen", activities=("vragen-beantwoorden",))
        session.add(
            IdempotencyKey(
                agency_id="toeslagen",
                key="last-year",
                request_hash="h",
                created_at=utcnow() - dt.timedelta(days=365),
            )
        )
    response = await client.post(
        "/api/cases",
        json={"journey": "vraag", "party": {"bsn": next_bsn(), "name": "Anna"}},
        headers=keyed(await key_for(database, "toeslagen"), "today"),
    )
    assert response.status_code == 201, response.text
    async with database.session() as session:
        keys = (
            await session.exec(select(IdempotencyKey.key).order_by(col(IdempotencyKey.key)))
        ).all()
    assert keys == ["today"]


async def test_a_patch_with_a_key_runs_once_and_a_get_is_left_alone(
    app: FastAPI, client: httpx.AsyncClient, database: Database, world: dict[str, Any]
) -> None:
    runs = itertools.count(1)

    async def change() -> dict[str, int]:
        return {"run": next(runs)}

    app.add_api_route("/api/test/change", change, methods=["PATCH", "GET"])
    headers = keyed(world["toeslagen"], "patch-once")
    answers = [
        (await client.patch("/api/test/change", json={}, headers=headers)).json() for _ in range(3)
    ]
    assert answers == [{"run": 1}] * 3
    fetched = await client.get("/api/test/change", headers=keyed(world["toeslagen"], "get"))
    assert fetched.json() == {"run": 2}
    async with database.session() as session:
        assert (await session.exec(select(IdempotencyKey.key))).all() == ["patch-once"]
