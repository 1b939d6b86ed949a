"""A citizen's read of their own case, ``GET /api/cases/{id}``: on PostgreSQL the hot path
(hub/cases/status_read.py, one statement past SQLAlchemy) answers it, everywhere else and for
everyone else the route as declared. Both must answer alike and refuse alike, on SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col, select, update

from hub.db import Database, utcnow
from hub.models import AccessLogEntry, Case, LoginSession, StaffMember
from tests.builders import (
    bearer,
    key_for,
    make_agency,
    make_mandate,
    make_party,
    make_staff,
    token_for,
)


@contextmanager
def statements_through_sqlalchemy(database: Database) -> Iterator[list[str]]:
    """The statements SQLAlchemy sends while the block runs (the hot path sends none)."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    sa.event.listen(database.engine.sync_engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(database.engine.sync_engine, "before_cursor_execute", note)


@pytest.fixture
async def world(client: httpx.AsyncClient, database: Database) -> dict[str, Any]:
    """Anna's debt-help case at gemeente-utrecht, with Belastingdienst and UWV taking part and
    a named contact person; Bram, a helper with a mandate for it, staff of a participating
    and of an outside agency."""
    async with database.session() as session:
        await make_agency(session, "gemeente-utrecht", activities=("schuldhulpverlening",))
        await make_agency(session, "belastingdienst", activities=("schuldhulpverlening",))
        await make_agency(session, "uwv", activities=("uwv-ww",))
        await make_agency(session, "rdw", activities=("rdw-rijbewijs",))
        owner = await make_staff(session, "gemeente-utrecht", name="Ilse Bakker")
        taking_part = await make_staff(session, "belastingdienst", name="Kees Smit")
        outsider = await make_staff(session, "rdw", name="Rik Mol")
        anna = await make_party(session, "Anna", email="anna@example.nl")
        bram = await make_party(session, "Bram", email="bram@example.nl")
        helper = await make_party(session, "Helper", email="helper@example.nl")
        await make_mandate(session, representative=helper, party=anna)
    opened = await client.post(
        "/api/cases",
        json={"journey": "schuldhulp", "party": {"bsn": anna.bsn, "name": anna.name}},
        headers=bearer(await key_for(database, "gemeente-utrecht")),
    )
    assert opened.status_code == 201, opened.text
    case_id = uuid.UUID(opened.json()["id"])
    async with database.session() as session:
        await session.exec(update(Case).where(col(Case.id) == case_id).values(owner_id=owner.id))
    return {
        "case_id": case_id,
        "anna": anna,
        "anna_token": await token_for(database, "citizen", anna.id),
        "bram_token": await token_for(database, "citizen", bram.id),
        "helper_token": await token_for(database, "citizen", helper.id),
        "taking_part": await token_for(database, "staff", taking_part.id),
        "outsider": await token_for(database, "staff", outsider.id),
    }


async def test_a_citizens_own_case_reads_the_same_on_either_path(
    client: httpx.AsyncClient, database: Database, world: dict[str, Any]
) -> None:
    case_id: uuid.UUID = world["case_id"]
    headers = bearer(world["anna_token"])
    for query in ("", "?lang=en", "?lang=nl"):
        with statements_through_sqlalchemy(database) as hot_statements:
            hot = await client.get(f"/api/cases/{case_id}{query}", headers=headers)
        # An upper-case id is not the hot path's spelling: the declared route answers it.
        with statements_through_sqlalchemy(database) as ordinary_statements:
            ordinary = await client.get(
                f"/api/cases/{str(case_id).upper()}{query}", headers=headers
            )
        assert hot.status_code == ordinary.status_code == 200
        assert hot.content == ordinary.content
        assert hot.headers["content-type"] == ordinary.headers["content-type"]
        assert ordinary_statements
        if database.dialect == "postgresql":
            assert hot_statements == []
        else:
            assert hot_statements
    body = hot.json()
    assert body["contact"]["name"] == "Ilse Bakker"
    assert body["contact"]["agency"] == "gemeente-utrecht"
    assert body["participating_agencies"] == ["belastingdienst", "uwv"]
    english = (await client.get(f"/api/cases/{case_id}?lang=en", headers=headers)).json()
    dutch = (await client.get(f"/api/cases/{case_id}", headers=headers)).json()
    assert english["title"] != dutch["title"]
    assert english["status_view"]["now"] != dutch["status_view"]["now"]


async def test_a_party_preferring_english_reads_english_on_either_path(
    client: httpx.AsyncClient, database: Database, world: dict[str, Any]
) -> None:
    async with database.session() as session:
        anna = await session.merge(world["anna"])
        anna.preferred_language = "en"
    headers = bearer(world["anna_token"])
    hot = await client.get(f"/api/cases/{world['case_id']}", headers=headers)
    ordinary = await client.get(f"/api/cases/{str(world['case_id']).upper()}", headers=headers)
    english = await client.get(f"/api/cases/{world['case_id']}?lang=en", headers=headers)
    assert hot.content == ordinary.content == english.content


async def test_a_cookie_session_reads_the_same_as_a_bearer_token(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    path = f"/api/cases/{world['case_id']}"
    with_bearer = await client.get(path, headers=bearer(world["anna_token"]))
    with_cookie = await client.get(path, headers={"Cookie": f"hub_session={world['anna_token']}"})
    assert with_cookie.status_code == 200
    assert with_cookie.content == with_bearer.content


async def test_a_session_ended_or_expired_reads_nothing_more(
    client: httpx.AsyncClient, database: Database, world: dict[str, Any]
) -> None:
    path = f"/api/cases/{world['case_id']}"
    unknown = await client.get(path, headers=bearer("0" * 64))
    assert unknown.status_code == 401

    token = world["anna_token"]
    assert (await client.get(path, headers=bearer(token))).status_code == 200
    assert (await client.delete("/api/auth/session", headers=bearer(token))).status_code == 204
    after_logout = await client.get(path, headers=bearer(token))
    assert after_logout.status_code == 401
    assert {**after_logout.json(), "instance": ""} == {**unknown.json(), "instance": ""}

    other = await token_for(database, "citizen", world["anna"].id)
    assert (await client.get(path, headers=bearer(other))).status_code == 200
    async with database.session() as session:
        await session.exec(
            update(LoginSession).values(expires_at=utcnow() - dt.timedelta(seconds=1))
        )
    assert (await client.get(path, headers=bearer(other))).status_code == 401


async def test_only_the_owner_is_answered_without_the_access_log(
    client: httpx.AsyncClient, database: Database, world: dict[str, Any]
) -> None:
    case_id = world["case_id"]
    path = f"/api/cases/{case_id}"
    missing = await client.get(f"/api/cases/{uuid.uuid4()}", headers=bearer(world["bram_token"]))
    for who in ("bram_token", "outsider"):
        refused = await client.get(path, headers=bearer(world[who]))
        assert refused.status_code == 404, who
        assert {**refused.json(), "instance": ""} == {**missing.json(), "instance": ""}

    own = await client.get(path, headers=bearer(world["anna_token"]))
    request_ids = {"helper_token": "representative-read-1", "taking_part": "staff-read-0001"}
    for who, request_id in request_ids.items():
        seen = await client.get(path, headers={**bearer(world[who]), "X-Request-ID": request_id})
        assert seen.status_code == 200, who
        # Staff and representatives see the same case; only the language may follow the reader.
        assert seen.json()["id"] == own.json()["id"]
        assert seen.json()["status_view"]["stages"] == own.json()["status_view"]["stages"]

    async with database.session() as session:
        entries = (
            await session.exec(select(AccessLogEntry).where(AccessLogEntry.case_id == case_id))
        ).all()
        staff = (
            await session.exec(select(StaffMember).where(StaffMember.display_name == "Kees Smit"))
        ).one()
    reads = {(e.actor_kind, e.request_id) for e in entries if e.action == "read"}
    # The owner's own reads are not an access by someone else; the others' are, with their ids.
    assert reads == {
        ("representative", "representative-read-1"),
        ("staff", "staff-read-0001"),
    }
    assert any(e.actor_id == str(staff.id) for e in entries)


@pytest.mark.parametrize(
    ("path", "credential", "status"),
    [
        ("/api/cases/not-a-case", None, 401),
        ("/api/cases/not-a-case", "0" * 64, 401),
        ("/api/cases/not-a-case", "anna_token", 422),
        ("/api/cases/{id}?lang=de", "0" * 64, 401),
        ("/api/cases/{id}?lang=de", "anna_token", 422),
        ("/api/cases/{id}?lang=en&lang=nl", "anna_token", 200),
        ("/api/cases/{id}", None, 401),
    ],
)
async def test_requests_the_hot_path_does_not_read_are_answered_as_before(
    client: httpx.AsyncClient,
    world: dict[str, Any],
    path: str,
    credential: str | None,
    status: int,
) -> None:
    """Authentication is decided before the path and query are validated, on either path."""
    token = world.get(credential, credential) if credential else None
    headers = bearer(token) if token else {}
    response = await client.get(path.format(id=world["case_id"]), headers=headers)
    assert response.status_code == status, response.text
