"""The append-only case event log.

Sequence numbers are taken by an atomic ``UPDATE case SET last_seq = last_seq + 1 …
RETURNING`` in the transaction that writes the event: PostgreSQL holds the case row's lock
and SQLite its write lock until commit, so two writers never get the same number, and a
rolled-back writer gives its number back — no gaps.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.db import after_commit, utcnow
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
) -> CaseEvent:
    """Append one event to the case's log with the next sequence number.

    The event is published to ``broker`` only after the session commits.
    """
    result = await session.exec(
        update(Case)
        .where(col(Case.id) == case_id)
        .values(last_seq=Case.last_seq + 1, updated_at=utcnow())
        .returning(col(Case.last_seq))
    )
    seq = result.scalar_one_or_none()
    if seq is None:
        raise NotFound("No such case.")
    event = CaseEvent(
        case_id=case_id,
        seq=seq,
        kind=kind,
        audience=audience,
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_name=actor.name,
        payload=payload or {},
    )
    session.add(event)
    await session.flush()
    if broker is not None:
        live = LiveEvent.from_event(event)

        async def publish() -> None:
            await broker.publish(live)

        after_commit(session, publish)
    return event


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
