"""A snapshot taken while events arrive, plus the events after it, equals a fresh snapshot
(property-based, with hypothesis), on SQLite and PostgreSQL.

The snapshot is what the citizen's case page loads and resumes the live view from
(``hub.web.portal._case_page`` with ``hub.web.chat.case_chat``): in one session, the case row,
then the thread (``hub.messages.thread.read_thread``, citizen's view: its messages with the
``seq`` of their events, internal notes left out), and the position
``hub.web.chat.live_position`` = the highest of the case's ``last_seq`` and the thread's
``seq``s. The live socket then sends the events after that position that the citizen may see
(``events_after`` and ``hub.live.protocol.visible``, as a follow's catch-up does), and the
page (hub/web/static/live.js) adds each ``message`` event's line to the thread unless a line
with its ``message_id`` is shown already, and moves its position to the event's ``seq``.

The property, for any citizen lines, staff replies, internal notes and other events (for the
citizen, or staff-only) committed before the snapshot, between any two of its statements
(PostgreSQL reads each statement afresh; SQLite's write lock, taken by the page's session,
holds writers off until it ends, so there those land after it) and after it:

    apply(snapshot, visible events after snapshot.position) == fresh snapshot

where the thread is compared line by line (message id, seq, channel, direction, author,
body, in order), no line the snapshot shows is sent again, and the positions agree up to
events the citizen may not see: no event the citizen may see lies after the applied position
in the fresh snapshot. The thread never
shows an internal note. (The status tracker, read before the thread, is refreshed by the page
when ``case.last_seq`` < position or a non-chat event arrives: not part of this property.)
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.db import Database
from hub.events.fanout import LiveEvent
from hub.events.service import Actor, append_event, events_after
from hub.live.protocol import visible
from hub.messages.service import post_message
from hub.messages.thread import read_thread
from hub.models import Agency, Case
from hub.web.chat import live_position
from tests.builders import make_agency, make_case, make_party

Write = Literal["citizen_line", "staff_reply", "note", "status", "staff_event"]
WRITES: tuple[Write, ...] = ("citizen_line", "staff_reply", "note", "status", "staff_event")
# Where a write lands: before the snapshot, before its 2nd, 3rd or 4th statement, or after.
SLOTS = 5
AFTER = SLOTS - 1
CITIZEN: tuple[str, ...] = ("citizen",)

Line = tuple[str, int | None, str, str, str | None, str]


@dataclass
class Snapshot:
    thread: list[Line]
    position: int
    tracker_seq: int
    # Lines the socket sent that the thread showed already (the page would skip them).
    resent: int = 0


def line_of(message: Any) -> Line:
    return (
        str(message.id),
        message.seq,
        message.channel,
        message.direction,
        message.author_name,
        message.body,
    )


async def write(database: Database, case_id: uuid.UUID, kind: Write, n: int) -> None:
    """One committed write of ``kind`` on the case, in a session of its own."""
    async with database.session() as session:
        case = await session.get(Case, case_id)
        assert case is not None
        citizen = Actor(kind="citizen", id=str(case.party_id), name="Jan Jansen")
        staff = Actor(kind="staff", id="s1", name="Sanne de Wit", agency_id="toeslagen")
        if kind in ("citizen_line", "staff_reply", "note"):
            direction = {"citizen_line": "inbound", "staff_reply": "outbound", "note": "internal"}
            await post_message(
                session,
                case=case,
                channel="webchat",
                direction=direction[kind],  # type: ignore[arg-type]
                author=citizen if kind == "citizen_line" else staff,
                body=f"regel {n}",
                identified_by="session" if kind == "citizen_line" else None,
            )
        else:
            await append_event(
                session,
                case_id=case_id,
                kind="status_changed" if kind == "status" else "assigned",
                actor=Actor.system(),
                audience="citizen" if kind == "status" else "staff",
            )


class Interleaved:
    """Runs the writes due before each statement the snapshot's session executes."""

    def __init__(self, due: dict[int, list[Callable[[], Awaitable[None]]]]) -> None:
        self.due = due
        self.statements = 0

    async def before_statement(self) -> None:
        self.statements += 1
        for run in self.due.pop(self.statements, []):
            await run()

    def wrap(self, session: AsyncSession) -> None:
        exec_, get = session.exec, session.get

        async def exec_interleaved(*args: Any, **kwargs: Any) -> Any:
            await self.before_statement()
            return await exec_(*args, **kwargs)

        async def get_interleaved(*args: Any, **kwargs: Any) -> Any:
            await self.before_statement()
            return await get(*args, **kwargs)

        session.exec = exec_interleaved  # type: ignore[method-assign]
        session.get = get_interleaved  # type: ignore[method-assign]


async def snapshot(database: Database, case_id: uuid.UUID, interleaved: Interleaved) -> Snapshot:
    """The case page's reads, in its order (see the module's docstring)."""
    async with database.session() as session:
        interleaved.wrap(session)
        case = await session.get(Case, case_id)
        assert case is not None
        thread = await read_thread(session, case, staff_view=False)
        return Snapshot(
            [line_of(m) for m in thread], live_position(case, thread), tracker_seq=case.last_seq
        )


async def visible_after(database: Database, case_id: uuid.UUID, position: int) -> list[LiveEvent]:
    """What following from ``position`` sends the citizen (all of it: the logs here are
    short)."""
    async with database.session() as session:
        events = await events_after(
            session, case_id, position, audiences=("citizen", "staff"), limit=10_000
        )
    return [e for e in map(LiveEvent.from_event, events) if visible(e, CITIZEN)]


def apply(old: Snapshot, events: list[LiveEvent]) -> Snapshot:
    """What the page does with the events it is sent (hub/web/static/live.js)."""
    thread = list(old.thread)
    shown = {line[0] for line in thread}
    position = old.position
    resent = 0
    for event in events:
        position = max(position, event.seq)
        if event.kind != "message":
            continue
        if event.payload["message_id"] in shown:
            resent += 1
            continue
        p = event.payload
        thread.append(
            (p["message_id"], event.seq, p["channel"], p["direction"], p["author_name"], p["body"])
        )
        shown.add(p["message_id"])
    return Snapshot(thread, position, old.tracker_seq, resent)


plans = st.lists(st.tuples(st.sampled_from(WRITES), st.integers(0, AFTER)), max_size=12)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=plans, earlier=st.lists(st.sampled_from(WRITES), max_size=4))
async def test_a_snapshot_taken_while_events_arrive_plus_the_events_after_it_is_fresh(
    database: Database, plan: list[tuple[Write, int]], earlier: list[Write]
) -> None:
    async with database.session() as session:  # the examples share the database
        if await session.get(Agency, "toeslagen") is None:
            await make_agency(session, "toeslagen")
        party = await make_party(session, "Jan Jansen")
        case = await make_case(session, party)
    case_id = case.id
    for n, kind in enumerate(earlier):
        await write(database, case_id, kind, n)

    def run(kind: Write, n: int) -> Callable[[], Awaitable[None]]:
        return lambda: write(database, case_id, kind, 100 + n)

    due: dict[int, list[Callable[[], Awaitable[None]]]] = {}
    for n, (kind, slot) in enumerate(plan):
        if database.dialect == "sqlite" and slot > 0:
            slot = AFTER  # the page's session holds the write lock from its first statement
        due.setdefault(slot + 1, []).append(run(kind, n))
    first = due.pop(1, [])
    for each in first:
        await each()
    last = due.pop(AFTER + 1, [])
    interleaved = Interleaved(due)
    taken = await snapshot(database, case_id, interleaved)
    # Statements the snapshot did not come to (a thread without messages reads less), and
    # on SQLite every write held off by the page's write lock, land after it.
    for pending in [*interleaved.due.values(), last]:
        for each in pending:
            await each()

    applied = apply(taken, await visible_after(database, case_id, taken.position))
    fresh = await snapshot(database, case_id, Interleaved({}))
    assert applied.thread == fresh.thread
    assert applied.resent == 0
    assert all(line[3] != "internal" for line in applied.thread)
    assert applied.position <= fresh.position
    assert await visible_after(database, case_id, applied.position) == []
