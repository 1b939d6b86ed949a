"""Oversized request bodies, on SQLite and PostgreSQL: refused with 413 problem details
whether their length is declared or they arrive chunked, before anything is stored; the
routes that take files keep their own, larger limits (their own tests, in tests/documents,
tests/email and tests/notices, cover those limits and the attachments a mail brings)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlmodel import select

from hub.app import create_app
from hub.config import Settings
from hub.db import Database
from hub.models import Message
from hub.ratelimit.body_size import LARGER_BODIES, BodySizeLimit
from tests.builders import bearer, key_for, make_agency, make_case, make_party, token_for
from tests.web.routes import served_routes

LIMIT = 2_000


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path,
        run_worker=False,
        max_body_bytes=LIMIT,
        max_upload_bytes=50_000,
    )


async def a_case(database: Database) -> tuple[uuid.UUID, str, str]:
    """A citizen's case: its id, the citizen's session token, and the agency's key."""
    async with database.session() as session:
        await make_agency(session)
        party = await make_party(session, email="jan@example.nl")
        case = await make_case(session, party)
    return (
        case.id,
        await token_for(database, "citizen", party.id),
        await key_for(database, "toeslagen"),
    )


async def messages_stored(database: Database) -> int:
    async with database.session() as session:
        return len((await session.exec(select(Message))).all())


def chunked(payload: bytes, size: int = 500) -> AsyncIterator[bytes]:
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), size):
            yield payload[start : start + size]

    return chunks()


def message_of(characters: int) -> bytes:
    return httpx.Request("POST", "/", json={"body": "x" * characters}).content


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["max_bytes"] == LIMIT
    assert f"{LIMIT:,} bytes" in problem["detail"]


async def test_a_body_over_the_limit_is_refused_declared_or_chunked_and_nothing_is_stored(
    client: httpx.AsyncClient, database: Database
) -> None:
    case_id, token, _ = await a_case(database)
    url = f"/api/cases/{case_id}/messages"
    headers = {**bearer(token), "Content-Type": "application/json"}
    over = message_of(LIMIT)  # a valid message, only too long a body
    assert len(over) > LIMIT

    assert_too_large(await client.post(url, content=over, headers=headers))
    assert_too_large(await client.post(url, content=chunked(over), headers=headers))
    assert await messages_stored(database) == 0

    within = message_of(LIMIT - 100)
    assert len(within) <= LIMIT
    assert (await client.post(url, content=chunked(within), headers=headers)).status_code == 201
    assert await messages_stored(database) == 1


async def test_a_chunked_body_is_cut_off_at_the_limit_not_read_to_the_end(
    client: httpx.AsyncClient, database: Database
) -> None:
    case_id, token, _ = await a_case(database)
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"body": "'
        for _ in range(10_000):
            sent += 1
            yield b"x" * 1000
        yield b'"}'

    response = await client.post(
        f"/api/cases/{case_id}/messages",
        content=endless(),
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    assert_too_large(response)
    assert sent < 10, "the hub kept reading after the limit"


async def test_an_agency_request_with_an_idempotency_key_is_refused_and_the_key_stays_free(
    client: httpx.AsyncClient, database: Database
) -> None:
    case_id, _, key = await a_case(database)
    url = f"/api/cases/{case_id}/messages"
    headers = {**bearer(key), "Content-Type": "application/json", "Idempotency-Key": "k-1"}

    assert_too_large(await client.post(url, content=chunked(message_of(LIMIT)), headers=headers))
    assert await messages_stored(database) == 0
    # The refusal was not stored as the key's answer: a right-sized retry runs.
    retried = await client.post(url, content=message_of(100), headers=headers)
    assert retried.status_code == 201, retried.text


async def test_a_page_form_over_the_limit_is_refused(client: httpx.AsyncClient) -> None:
    form = {"address": "x" * LIMIT + "@example.nl"}
    response = await client.post("/login", data=form)
    assert response.status_code == 413


async def test_a_file_route_keeps_its_own_larger_limit(
    client: httpx.AsyncClient, database: Database
) -> None:
    case_id, token, _ = await a_case(database)
    # Over the general limit and within HUB_MAX_UPLOAD_BYTES: the document's own checks
    # answer (a PNG of one pixel with junk after it is still a PNG).
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
    content = png + b"\0" * (LIMIT * 5)
    response = await client.post(
        f"/api/cases/{case_id}/documents",
        files={"file": ("scan.png", content, "image/png")},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text


def test_every_larger_limit_names_a_served_route(settings: Settings) -> None:
    app = create_app(settings)
    served = {(method, s.path) for s in served_routes(app) for method in s.methods}
    for method, path, _ in LARGER_BODIES:
        assert (method, path) in served, f"{method} {path} is not a route: update LARGER_BODIES"
    limits = BodySizeLimit(app, settings=settings)
    assert limits.limit_for("POST", f"/api/cases/{uuid.uuid4()}/documents") > LIMIT
    assert limits.limit_for("POST", "/api/cases") == LIMIT


async def test_the_default_is_a_couple_of_megabytes(tmp_path: Path, database: Database) -> None:
    settings = Settings(environment="test", data_dir=tmp_path, run_worker=False)
    application = create_app(settings, database=database)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
            response = await client.post(
                "/api/auth/citizen/code",
                content=b"x" * (settings.max_body_bytes + 1),
                headers={"Content-Type": "application/json"},
            )
    assert response.status_code == 413
    assert response.json()["max_bytes"] == 2 * 1024 * 1024
