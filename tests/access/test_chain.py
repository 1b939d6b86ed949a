"""The access log on SQLite and PostgreSQL: every entry chained to the one before, under a
pseudonym of the citizen; entries written at once still form one chain; the database itself
refuses to change or remove one; a log changed behind the hub's back fails verification at the
entry changed; a read whose entry cannot be written is not answered."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import col, select

from hub.access.chain import GENESIS, pseudonym, subject_key, verify_chain
from hub.config import Settings
from hub.db import Database
from hub.models import AccessLogEntry
from tests.access.tampering import behind_the_back
from tests.builders import bearer
from tests.messages.world import World


def thread_url(world: World) -> str:
    return f"/api/cases/{world.question.id}/messages"


async def entries(database: Database) -> list[AccessLogEntry]:
    async with database.session() as session:
        query = select(AccessLogEntry).order_by(col(AccessLogEntry.seq))
        return list((await session.exec(query)).all())


async def staff_reads(client: httpx.AsyncClient, world: World, times: int) -> None:
    for _ in range(times):
        response = await client.get(thread_url(world), headers=bearer(world.sanne_token))
        assert response.status_code == 200, response.text


async def test_each_read_is_chained_to_the_one_before_under_a_pseudonym(
    client: httpx.AsyncClient, database: Database, world: World, settings: Settings
) -> None:
    await staff_reads(client, world, 3)

    log = await entries(database)
    assert [e.seq for e in log] == [1, 2, 3]
    assert log[0].prev_hash == GENESIS
    assert [e.prev_hash for e in log[1:]] == [e.entry_hash for e in log[:-1]]
    expected = hmac.new(subject_key(settings), world.anna.id.bytes, hashlib.sha256).hexdigest()
    assert {e.subject for e in log} == {expected}
    assert world.anna.id.hex not in expected and str(world.anna.id) not in expected
    report = await verify_chain(database)
    assert report.ok and report.checked == 3 and report.head_hash == log[-1].entry_hash


async def test_reads_at_the_same_time_form_one_chain(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    responses = await asyncio.gather(
        *(client.get(thread_url(world), headers=bearer(world.sanne_token)) for _ in range(12))
    )

    assert {r.status_code for r in responses} == {200}
    assert [e.seq for e in await entries(database)] == list(range(1, 13))
    assert (await verify_chain(database)).ok


async def test_writers_on_their_own_connections_form_one_chain(
    database: Database, world: World
) -> None:
    """As several hub processes would: each its own pool, the lock in the database."""
    from hub.access.service import Viewer, record_access

    viewer = Viewer(kind="staff", id="s", name="Sanne", agency_id="toeslagen")
    hubs = [Database(database.url) for _ in range(4)]

    async def write(hub: Database, n: int) -> None:
        for _ in range(n):
            async with hub.session() as session:
                await record_access(
                    session, viewer, party_id=world.anna.id, action="read", data="case"
                )

    try:
        await asyncio.gather(*(write(hub, 5) for hub in hubs))
    finally:
        for hub in hubs:
            await hub.dispose()

    assert [e.seq for e in await entries(database)] == list(range(1, 21))
    assert (await verify_chain(database)).ok


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE access_log SET actor_name = 'nobody'",
        "UPDATE access_log SET party_id = :other",
        "UPDATE access_log SET party_id = NULL, data = 'nothing'",
        "DELETE FROM access_log",
    ],
)
async def test_the_database_refuses_to_change_or_remove_an_entry(
    client: httpx.AsyncClient, database: Database, world: World, statement: str
) -> None:
    await staff_reads(client, world, 2)

    other = world.bram.id if database.dialect == "postgresql" else world.bram.id.hex
    values = {"other": other} if ":other" in statement else {}
    with pytest.raises(DBAPIError, match="append-only"):
        async with database.engine.begin() as connection:
            await connection.execute(text(statement), values)

    assert [e.actor_name for e in await entries(database)] == ["Sanne de Wit"] * 2


@pytest.mark.postgres
async def test_postgres_refuses_to_truncate_the_log(database: Database) -> None:
    if database.dialect != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's")
    with pytest.raises(DBAPIError, match="append-only: TRUNCATE refused"):
        async with database.engine.begin() as connection:
            await connection.execute(text("TRUNCATE access_log CASCADE"))


async def test_only_dropping_the_party_is_let_through_and_the_chain_still_holds(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    await staff_reads(client, world, 2)

    async with database.engine.begin() as connection:
        await connection.execute(text("UPDATE access_log SET party_id = NULL WHERE seq = 1"))

    log = await entries(database)
    assert [e.party_id for e in log] == [None, world.anna.id]
    assert log[0].subject == pseudonym(world.anna.id)
    assert (await verify_chain(database)).ok


async def test_a_changed_entry_fails_verification_at_that_entry(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    await staff_reads(client, world, 4)

    await behind_the_back(
        database, "UPDATE access_log SET actor_name = 'Someone Else' WHERE seq = 3"
    )

    report = await verify_chain(database)
    assert report.broken is not None and report.checked == 2
    assert report.broken.seq == 3 and "changed" in report.broken.reason


async def test_a_removed_entry_fails_verification_where_it_was(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    await staff_reads(client, world, 4)

    await behind_the_back(database, "DELETE FROM access_log WHERE seq = 2")

    report = await verify_chain(database)
    assert report.broken is not None and report.broken.seq == 3
    assert "entry 2 is missing" in report.broken.reason


@pytest.mark.parametrize("reader", ["sanne_token", "rita_token"], ids=["staff", "representative"])
async def test_a_read_whose_entry_cannot_be_written_is_not_answered(
    client: httpx.AsyncClient, database: Database, world: World, reader: str
) -> None:
    posted = await client.post(
        thread_url(world),
        json={"body": "Wanneer krijg ik antwoord?"},
        headers=bearer(world.anna_token),
    )
    assert posted.status_code in (200, 201), posted.text
    async with database.engine.begin() as connection:
        if database.dialect == "postgresql":
            await connection.execute(
                text(
                    "CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'disk full'; END $$"
                )
            )
            await connection.execute(
                text(
                    "CREATE TRIGGER disk_full BEFORE INSERT ON access_log "
                    "FOR EACH ROW EXECUTE FUNCTION disk_full()"
                )
            )
        else:
            await connection.execute(
                text(
                    "CREATE TRIGGER disk_full BEFORE INSERT ON access_log "
                    "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
                )
            )
    try:
        response = await client.get(thread_url(world), headers=bearer(getattr(world, reader)))
    finally:
        async with database.engine.begin() as connection:
            await connection.execute(
                text("DROP TRIGGER disk_full ON access_log")
                if database.dialect == "postgresql"
                else text("DROP TRIGGER disk_full")
            )
            if database.dialect == "postgresql":
                await connection.execute(text("DROP FUNCTION disk_full()"))

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["title"] == "Access log unavailable"
    assert "Wanneer" not in response.text and "body" not in response.text
    assert await entries(database) == []
    shown = await client.get(thread_url(world), headers=bearer(getattr(world, reader)))
    assert "Wanneer krijg ik antwoord?" in shown.text  # what the refused read would have shown


def test_a_pseudonym_is_the_same_for_the_same_party_and_differs_between_parties() -> None:
    anna, bram = uuid.uuid4(), uuid.uuid4()
    assert pseudonym(anna) == pseudonym(anna) != pseudonym(bram)
    assert len(pseudonym(anna)) == 64
