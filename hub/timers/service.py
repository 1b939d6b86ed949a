"""Durable timers: rows with a due time, fired by the worker — never an in-memory schedule."""

from __future__ import annotations

import logging
import uuid

from sqlmodel import col, select

from hub.cases.service import act_on_case
from hub.clock import local_date
from hub.db import Database, utcnow
from hub.errors import Conflict
from hub.events.fanout import Broker
from hub.events.service import Actor
from hub.models import Case, Timer
from journeys.catalog import Catalog
from journeys.engine import DeadlinePassed

log = logging.getLogger("hub.timers")

CITIZEN_DEADLINE = "citizen_deadline"


async def due_timer_ids(database: Database, *, limit: int = 50) -> list[uuid.UUID]:
    async with database.session() as session:
        query = (
            select(Timer.id)
            .where(Timer.due_at <= utcnow())
            .where(col(Timer.fired_at).is_(None), col(Timer.cancelled_at).is_(None))
            .order_by(col(Timer.due_at))
            .limit(limit)
        )
        return list((await session.exec(query)).all())


async def fire_timer(
    database: Database,
    timer_id: uuid.UUID,
    *,
    catalog: Catalog,
    broker: Broker | None,
    timezone: str,
) -> bool:
    """Fire one timer in its own transaction; False when another worker already did."""
    async with database.session() as session:
        query = select(Timer).where(Timer.id == timer_id)
        if database.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        timer = (await session.exec(query)).first()
        if timer is None or timer.fired_at is not None or timer.cancelled_at is not None:
            return False
        timer.fired_at = utcnow()
        session.add(timer)
        if timer.kind == CITIZEN_DEADLINE and timer.case_id is not None:
            case = await session.get(Case, timer.case_id, with_for_update=True)
            if case is not None:
                try:
                    await act_on_case(
                        session,
                        catalog=catalog,
                        case=case,
                        action=DeadlinePassed(on=local_date(timer.due_at, timezone)),
                        actor=Actor.system(),
                        broker=broker,
                        timezone=timezone,
                    )
                except Conflict as refused:
                    # The case moved on (information came in) before the timer fired.
                    log.info("timer %s on case %s not applied: %s", timer.id, case.id, refused)
        return True


async def fire_due_timers(
    database: Database, *, catalog: Catalog, broker: Broker | None, timezone: str
) -> int:
    fired = 0
    for timer_id in await due_timer_ids(database):
        fired += await fire_timer(
            database, timer_id, catalog=catalog, broker=broker, timezone=timezone
        )
    return fired
