"""The event log: gapless per-case sequence numbers under concurrent writers, publish after
commit only."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlmodel import col, select

from hub.db import Database
from hub.errors import NotFound
from hub.events.fanout import LiveEvent, MemoryBroker
from hub.events.service import Actor, append_event
from hub.models import Case, CaseEvent, Message
from tests.builders import make_agency, make_party

WRITERS = 8
EVENTS_PER_WRITER = 25


async def make_case(database: Database) -> uuid.UUID:
    async with database.session() as session:
        await make_agency(session, "toeslagen")
        party = await make_party(session)
        case = Case(
            reference=f"HU-2026-{uuid.uuid4().int % 10**6:06d}",
            journey_id="huurtoeslag",
            journey_version=1,
            agency_id="toeslagen",
            party_id=party.id,
            title="t",
            stage="received",
            state={},
        )
        session.add(case)
    return case.id


async def test_concurrent_writers_never_leave_a_gap_or_a_duplicate(database: Database) -> None:
    case_id = await make_case(database)
    actor = Actor(kind="system")

    async def writer(number: int) -> None:
        for index in range(EVENTS_PER_WRITER):
            async with database.session() as session:
                await append_event(
                    session,
                    case_id=case_id,
                    kind="tick",
                    actor=actor,
                    payload={"writer": number, "index": index},
                )

    async def failing_writer() -> None:
        # Rolled-back appends give their numbers back: no gap where they were.
        for _ in range(5):
            with pytest.raises(RuntimeError):
                async with database.session() as session:
                    await append_event(session, case_id=case_id, kind="lost", actor=actor)
                    raise RuntimeError("abort")

    await asyncio.gather(*(writer(n) for n in range(WRITERS)), failing_writer())
    async with database.session() as session:
        seqs = (
            await session.exec(
                select(CaseEvent.seq)
                .where(CaseEvent.case_id == case_id)
                .order_by(col(CaseEvent.seq))
            )
        ).all()
        case = await session.get(Case, case_id)
    total = WRITERS * EVENTS_PER_WRITER
    assert list(seqs) == list(range(1, total + 1))
    assert case is not None and case.last_seq == total


async def test_live_events_go_out_only_after_commit(database: Database) -> None:
    case_id = await make_case(database)
    broker = MemoryBroker()
    received: list[LiveEvent] = []

    async def follow() -> None:
        async for event in broker.subscribe(case_id):
            received.append(event)
            if event.kind == "kept":
                return

    follower = asyncio.create_task(follow())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        async with database.session() as session:
            await append_event(
                session, case_id=case_id, kind="rolled-back", actor=Actor("system"), broker=broker
            )
            raise RuntimeError("abort")
    async with database.session() as session:
        await append_event(
            session, case_id=case_id, kind="kept", actor=Actor("system"), broker=broker
        )
        await asyncio.sleep(0.05)
        assert received == []  # not yet committed
    await asyncio.wait_for(follower, 2)
    assert [(e.kind, e.seq) for e in received] == [("kept", 1)]


async def test_a_row_appended_along_is_stored_with_its_event_or_not_at_all(
    database: Database,
) -> None:
    case_id = await make_case(database)

    def line(body: str) -> Message:
        return Message(
            case_id=case_id, channel="webchat", direction="internal", author_kind="staff", body=body
        )

    with pytest.raises(RuntimeError):
        async with database.session() as session:
            await append_event(
                session, case_id=case_id, kind="note", actor=Actor("staff"), along=line("weg")
            )
            raise RuntimeError("abort")
    async with database.session() as session:
        case = await session.get(Case, case_id)
        assert case is not None
        kept = line("blijft")
        event = await append_event(
            session,
            case_id=case_id,
            kind="note",
            actor=Actor("staff"),
            payload={"n": 1},
            along=kept,
        )
        # The case loaded in the session knows its new number, as after an ORM update.
        assert (event.seq, case.last_seq) == (1, 1)
        kept.meta = {"edited": True}  # the stored row is in the session: changes are saved
    async with database.session() as session:
        bodies = (await session.exec(select(Message.body, Message.meta))).all()
        events = (await session.exec(select(CaseEvent))).all()
    assert bodies == [("blijft", {"edited": True})]
    assert [(e.id, e.seq, e.kind, e.payload) for e in events] == [(event.id, 1, "note", {"n": 1})]


async def test_appending_to_a_case_that_does_not_exist_is_not_found(database: Database) -> None:
    with pytest.raises(NotFound):
        async with database.session() as session:
            await append_event(session, case_id=uuid.uuid4(), kind="tick", actor=Actor("system"))
