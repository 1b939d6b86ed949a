"""The append-only case event log.

Sequence numbers are taken by an atomic ``UPDATE case SET last_seq = last_seq + 1 …
RETURNING`` in the transaction that writes the event: PostgreSQL holds the case row's lock
and SQLite its write lock until commit, so two writers never get the same number, and a
rolled-back writer gives its number back — no gaps. On PostgreSQL that UPDATE is a CTE of
the event's INSERT (and of the row that comes with it, a message say): one round trip.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Insert, Table, bindparam, insert, update
from sqlalchemy import select as select_columns
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.db import after_commit
from hub.errors import NotFound
from hub.events.fanout import Broker, LiveEvent
from hub.models import Case, CaseEvent

Audience = Literal["citizen", "staff"]


@dataclass(frozen=True)
class Actor:
    """Who did something: shown on the case so the citizen knows whom they deal with."""

    kind: str  # citizen | representative | staff | agency | system
    id: str | None = None
    name: str | None = None
    agency_id: str | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls(kind="system", name="Interaction Hub")


async def append_event(
    session: AsyncSession,
    *,
    case_id: uuid.UUID,
    kind: str,
    actor: Actor,
    payload: dict[str, Any] | None = None,
    audience: Audience = "citizen",
    broker: Broker | None = None,
    along: SQLModel | None = None,
) -> CaseEvent:
    """Append one event to the case's log with the next sequence number.

    ``along`` is a new row (a message, say) inserted in the same statement on PostgreSQL.
    The event is published to ``broker`` only after the session commits.
    """
    event = CaseEvent(
        case_id=case_id,
        seq=0,
        kind=kind,
        audience=audience,
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_name=actor.name,
        payload=payload or {},
    )
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await _append_in_one_statement(session, event, along)
    else:
        if along is not None:
            session.add(along)
            await session.flush()
        result = await session.exec(
            update(Case)
            .where(col(Case.id) == case_id)
            .values(last_seq=Case.last_seq + 1, updated_at=event.created_at)
            .returning(col(Case.last_seq))
        )
        seq = result.scalar_one_or_none()
        if seq is None:
            raise NotFound("No such case.")
        event.seq = seq
        session.add(event)
        await session.flush()
    if broker is not None:
        live = LiveEvent.from_event(event)

        async def publish() -> None:
            await broker.publish(live)

        after_commit(session, publish)
    return event


async def _append_in_one_statement(
    session: AsyncSession, event: CaseEvent, along: SQLModel | None
) -> None:
    """Take the sequence number and insert the event (and ``along``) in one round trip:

        WITH next_seq AS (UPDATE case SET last_seq = last_seq + 1 … RETURNING last_seq)
        INSERT INTO case_event (…, seq) SELECT …, last_seq FROM next_seq RETURNING id, seq

    The UPDATE locks the case row until commit, exactly as a statement of its own would.
    The rows are then put in the session as the stored rows they are, and a case loaded in
    the session gets its new ``last_seq``, as the ORM would have done.
    """
    await session.flush()  # rows added before (a new conversation, say) go in first
    along_table = _table(along) if along is not None else None
    params = {f"e_{name}": value for name, value in _column_values(event, _EVENT_VALUES)}
    if along is not None and along_table is not None:
        params.update((f"a_{name}", value) for name, value in _column_values(along))
    connection = await session.connection()
    row = (await connection.execute(_append_statement(along_table), params)).first()
    if row is None:
        raise NotFound("No such case.")
    event.id, event.seq = row
    for stored in (along, event):
        if stored is not None:
            make_transient_to_detached(stored)
            session.add(stored)
    loaded = session.identity_map.get(session.identity_key(Case, event.case_id))
    if isinstance(loaded, Case):
        set_committed_value(loaded, "last_seq", event.seq)
        set_committed_value(loaded, "updated_at", event.created_at)


# The event's columns given in the statement (``id`` and ``seq`` come from the database).
_EVENT_VALUES = (
    "case_id",
    "kind",
    "audience",
    "actor_kind",
    "actor_id",
    "actor_name",
    "payload",
    "created_at",
)


@functools.cache
def _append_statement(along: Table | None) -> Insert:
    """The statement of :func:`_append_in_one_statement`, built once (per ``along`` table)
    with named parameters: building and keying a statement costs more than running it."""
    cases, events = _table(Case), _table(CaseEvent)
    taken = (
        update(cases)
        .where(cases.c.id == bindparam("e_case_id", type_=cases.c.id.type))
        .values(
            last_seq=cases.c.last_seq + 1,
            updated_at=bindparam("e_created_at", type_=cases.c.updated_at.type),
        )
        .returning(cases.c.last_seq)
        .cte("next_seq")
    )
    values = [bindparam(f"e_{name}", type_=events.c[name].type) for name in _EVENT_VALUES]
    statement = (
        insert(events)
        .from_select([*_EVENT_VALUES, "seq"], select_columns(*values, taken.c.last_seq))
        .returning(events.c.id, events.c.seq)
    )
    if along is not None:
        along_values = {c.name: bindparam(f"a_{c.name}", type_=c.type) for c in along.columns}
        statement = statement.add_cte(insert(along).values(along_values).cte("along"))
    return statement


def _table(model: type[SQLModel] | SQLModel) -> Table:
    table: Table = (model if isinstance(model, type) else type(model)).__table__  # type: ignore[attr-defined]
    return table


def _column_values(row: SQLModel, names: Sequence[str] | None = None) -> list[tuple[str, Any]]:
    if names is None:
        names = [c.name for c in _table(row).columns]
    return [(name, getattr(row, name)) for name in names]


async def events_after(
    session: AsyncSession,
    case_id: uuid.UUID,
    after: int,
    *,
    audiences: Sequence[Audience],
    limit: int = 500,
) -> list[CaseEvent]:
    """The case's events with a sequence number above ``after``, in order, for the audiences."""
    query = (
        select(CaseEvent)
        .where(CaseEvent.case_id == case_id, col(CaseEvent.seq) > after)
        .where(col(CaseEvent.audience).in_(list(audiences)))
        .order_by(col(CaseEvent.seq))
        .limit(limit)
    )
    return list((await session.exec(query)).all())
