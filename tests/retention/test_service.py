"""Retention on SQLite and PostgreSQL: a closed case past its journey's term goes with its
messages, events, chats, timers, notices, deliveries and documents; its access log entries
stay, without the party, and the chain still verifies. Cases within their term, open cases
and other parties' data stay as they were."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, func, select

from hub.access.chain import pseudonym, verify_chain
from hub.access.service import Viewer, record_access
from hub.app import build_adapters
from hub.config import Settings
from hub.db import Database, utcnow
from hub.delivery.worker import Worker
from hub.documents.service import write_file
from hub.models import (
    AccessLogEntry,
    Case,
    CaseEvent,
    Document,
    Message,
    OutboxItem,
    Timer,
)
from hub.retention import service as retention
from hub.retention.service import apply_retention, retention_step
from tests.builders import bearer
from tests.messages.world import World, catalog


async def close(database: Database, case: Case, *, days_ago: int) -> None:
    async with database.session() as session:
        row = await session.get(Case, case.id)
        assert row is not None
        row.status, row.closed_at = "closed", utcnow() - dt.timedelta(days=days_ago)
        session.add(row)


async def count(database: Database, model: type, case_id: uuid.UUID) -> int:
    async with database.session() as session:
        query = select(func.count()).select_from(model).where(model.case_id == case_id)  # type: ignore[attr-defined]
        return int((await session.exec(query)).one())


async def talk_about(client: httpx.AsyncClient, world: World, case: Case) -> None:
    """The citizen writes, staff read and answer: messages, an outbox item, access log."""
    url = f"/api/cases/{case.id}/messages"
    for token, body in ((world.anna_token, "Wanneer?"), (world.sanne_token, "Volgende week.")):
        response = await client.post(url, json={"body": body}, headers=bearer(token))
        assert response.status_code in (200, 201), response.text
    assert (await client.get(url, headers=bearer(world.sanne_token))).status_code == 200


async def attach(database: Database, store: Path, case: Case, content: bytes) -> str:
    digest, key = write_file(store, content)
    async with database.session() as session:
        session.add(
            Document(
                case_id=case.id,
                party_id=case.party_id,
                filename="loonstrook.pdf",
                content_type="application/pdf",
                size=len(content),
                sha256=digest,
                storage_key=key,
                source="upload",
                uploaded_by_kind="citizen",
            )
        )
    return key


async def test_a_closed_case_past_its_term_goes_and_its_log_entries_stay_pseudonymised(
    client: httpx.AsyncClient, database: Database, world: World, tmp_path: Path
) -> None:
    await talk_about(client, world, world.question)
    await talk_about(client, world, world.allowance)
    own_file = await attach(database, tmp_path, world.question, b"%PDF-1.4 only the question")
    shared_file = await attach(database, tmp_path, world.question, b"%PDF-1.4 both")
    await attach(database, tmp_path, world.allowance, b"%PDF-1.4 both")
    await close(database, world.question, days_ago=400)  # a question is kept a year
    await close(database, world.allowance, days_ago=400)  # an allowance seven years
    for present in (Message, CaseEvent, OutboxItem, Document):
        assert await count(database, present, world.question.id) > 0, present.__name__
    async with database.session() as session:
        entries_before = (
            await session.exec(
                select(AccessLogEntry).where(AccessLogEntry.case_id == world.question.id)
            )
        ).all()
    assert entries_before

    removed = await apply_retention(database, catalog=catalog(), store=tmp_path)

    assert removed.cases == 1 and removed.messages == 2 and removed.documents == 2
    async with database.session() as session:
        assert await session.get(Case, world.question.id) is None
        assert await session.get(Case, world.allowance.id) is not None
    for model in (Message, CaseEvent, Timer, OutboxItem, Document):
        assert await count(database, model, world.question.id) == 0, model.__name__
    assert await count(database, Message, world.allowance.id) == 2
    assert await count(database, Document, world.allowance.id) == 1
    assert not (tmp_path / own_file).exists() and (tmp_path / shared_file).exists()

    async with database.session() as session:
        entries = (
            await session.exec(
                select(AccessLogEntry).where(AccessLogEntry.case_id == world.question.id)
            )
        ).all()
        others = (
            await session.exec(
                select(AccessLogEntry).where(AccessLogEntry.case_id == world.allowance.id)
            )
        ).all()
    assert len(entries) == len(entries_before) == removed.access_log_pseudonymised
    assert {(e.party_id, e.subject) for e in entries} == {(None, pseudonym(world.anna.id))}
    assert {e.party_id for e in others} == {world.anna.id}
    report = await verify_chain(database)
    assert report.ok and report.checked == len(entries) + len(others)

    # The citizen still reads who looked at the removed case (found by her pseudonym), no
    # longer which case it was.
    answer = await client.get("/api/me/access-log", headers=bearer(world.anna_token))
    shown = [row["case_reference"] for row in answer.json()]
    assert shown.count(None) == len(entries)
    assert set(shown) == {world.allowance.reference, None}


async def test_a_case_within_its_term_and_an_open_case_stay(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    await talk_about(client, world, world.question)
    await close(database, world.question, days_ago=300)

    removed = await apply_retention(database, catalog=catalog())

    assert removed.cases == 0
    assert await count(database, Message, world.question.id) == 2
    async with database.session() as session:
        assert (await session.exec(select(func.count()).select_from(Case))).one() == 3


async def test_access_to_the_party_outside_a_case_keeps_naming_them(
    database: Database, world: World
) -> None:
    staff = Viewer(kind="staff", id="s", name="Sanne", agency_id="toeslagen")
    async with database.session() as session:
        await record_access(session, staff, party_id=world.anna.id, action="search", data="party")
    await close(database, world.question, days_ago=400)

    await apply_retention(database, catalog=catalog())

    async with database.session() as session:
        [entry] = (await session.exec(select(AccessLogEntry))).all()
    assert entry.party_id == world.anna.id and entry.case_id is None


async def test_many_expired_cases_go_in_batches_and_are_logged(
    database: Database, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.messages.world import open_for

    async with database.session() as session:
        for _ in range(5):
            case = await open_for(session, world.bram, "vraag", agency_id="toeslagen")
            case.status, case.closed_at = "closed", utcnow() - dt.timedelta(days=800)
            session.add(case)

    with caplog.at_level(logging.INFO, logger="hub.retention"):
        removed = await apply_retention(database, catalog=catalog(), batch=2)

    assert removed.cases == 5
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "retention: removed 2 closed cases past their term",
        "retention: removed 2 closed cases past their term",
        "retention: removed 1 closed cases past their term",
    ]


async def test_the_worker_step_looks_again_only_after_its_interval(
    database: Database, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await close(database, world.question, days_ago=400)
    assert await retention_step(database, catalog()) == 1

    await close(database, world.allowance, days_ago=3000)
    assert await retention_step(database, catalog()) == 0

    monkeypatch.setattr(retention, "INTERVAL_SECONDS", 0.0)
    retention._next_run.clear()
    assert await retention_step(database, catalog()) == 1
    async with database.session() as session:
        left = (await session.exec(select(Case.id).order_by(col(Case.created_at)))).all()
    assert left == [world.benefit.id]


async def test_the_delivery_workers_round_removes_an_expired_case(
    database: Database, world: World, settings: Settings
) -> None:
    await close(database, world.question, days_ago=400)
    worker = Worker(
        database=database,
        adapters=build_adapters(settings, database),
        catalog=catalog(),
        broker=None,
        timezone="Europe/Amsterdam",
    )

    await worker.run_once()

    async with database.session() as session:
        assert await session.get(Case, world.question.id) is None
