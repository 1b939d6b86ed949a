"""Readiness checks: can this process reach the database and, when configured, Redis?

Each check opens a fresh round trip and gives up after :data:`CHECK_SECONDS`, so a probe
answers before an orchestrator's own timeout and a server that hangs counts as down. What
went wrong is logged by exception class only: a driver's message may carry the URL, and the
URL may carry a password.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Literal

import redis.asyncio as redis
from sqlalchemy import text

from hub.db import Database

log = logging.getLogger(__name__)

CHECK_SECONDS = 2.0

State = Literal["ok", "down"]


@dataclass(frozen=True)
class Readiness:
    """What each dependency answered; ``redis`` is None when the hub runs without Redis."""

    database: State
    redis: State | None

    @property
    def ready(self) -> bool:
        return self.database == "ok" and self.redis != "down"

    def checks(self) -> dict[str, State]:
        found: dict[str, State] = {"database": self.database}
        if self.redis is not None:
            found["redis"] = self.redis
        return found

    def down(self) -> list[str]:
        return [name for name, state in self.checks().items() if state == "down"]


async def check_database(database: Database, *, seconds: float = CHECK_SECONDS) -> State:
    try:
        async with asyncio.timeout(seconds), database.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as error:  # any failure means "not reachable"
        log.warning("readiness: database unreachable (%s)", type(error).__name__)
        return "down"
    return "ok"


async def check_redis(url: str, *, seconds: float = CHECK_SECONDS) -> State:
    client = redis.Redis.from_url(url, socket_connect_timeout=seconds, socket_timeout=seconds)
    try:
        async with asyncio.timeout(seconds):
            await client.ping()
    except Exception as error:  # any failure means "not reachable"
        log.warning("readiness: Redis unreachable (%s)", type(error).__name__)
        return "down"
    finally:
        await client.aclose()
    return "ok"


async def check_readiness(database: Database, redis_url: str | None) -> Readiness:
    """Both checks at once, so a probe takes at most :data:`CHECK_SECONDS`."""
    if redis_url:
        database_state, redis_state = await asyncio.gather(
            check_database(database), check_redis(redis_url)
        )
        return Readiness(database=database_state, redis=redis_state)
    return Readiness(database=await check_database(database), redis=None)
