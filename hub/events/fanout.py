"""Live fan-out of committed case events to whoever follows a case.

In-process by default; across processes through Redis pub/sub when configured. A follower
that misses something (a slow consumer, a reconnect) resumes from the log by sequence number:
fan-out is a hint to look, the log is the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from hub.models import CaseEvent


@dataclass(frozen=True)
class LiveEvent:
    case_id: str
    seq: int
    kind: str
    audience: str
    actor_kind: str
    actor_name: str | None
    payload: dict[str, Any]
    created_at: str

    @classmethod
    def from_event(cls, event: CaseEvent) -> LiveEvent:
        return cls(
            case_id=str(event.case_id),
            seq=event.seq,
            kind=event.kind,
            audience=event.audience,
            actor_kind=event.actor_kind,
            actor_name=event.actor_name,
            payload=event.payload,
            created_at=event.created_at.astimezone(dt.UTC).isoformat(),
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> LiveEvent:
        return cls(**json.loads(raw))


class Broker(Protocol):
    async def publish(self, event: LiveEvent) -> None: ...

    def subscribe(self, case_id: uuid.UUID) -> AsyncIterator[LiveEvent]: ...

    async def citizen_online(self, case_id: uuid.UUID) -> bool:
        """Whether the citizen (or their representative) follows the case live right now."""
        ...

    async def close(self) -> None: ...


class MemoryBroker:
    """In-process fan-out. ``publish`` never blocks: a follower whose queue is full is told
    to reload (it gets a sentinel and resumes from the log)."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        self._followers: dict[str, set[asyncio.Queue[LiveEvent | None]]] = defaultdict(set)
        self._citizens_online: dict[str, int] = defaultdict(int)

    async def publish(self, event: LiveEvent) -> None:
        for queue in list(self._followers.get(event.case_id, ())):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait(None)

    async def subscribe(self, case_id: uuid.UUID) -> AsyncIterator[LiveEvent]:
        """Yield events of ``case_id`` published from now on; ends when the follower lags."""
        key = str(case_id)
        queue: asyncio.Queue[LiveEvent | None] = asyncio.Queue(self._queue_size)
        self._followers[key].add(queue)
        try:
            while (item := await queue.get()) is not None:
                yield item
        finally:
            self._followers[key].discard(queue)
            if not self._followers[key]:
                del self._followers[key]

    def citizen_joined(self, case_id: uuid.UUID) -> None:
        self._citizens_online[str(case_id)] += 1

    def citizen_left(self, case_id: uuid.UUID) -> None:
        key = str(case_id)
        self._citizens_online[key] -= 1
        if self._citizens_online[key] <= 0:
            del self._citizens_online[key]

    async def citizen_online(self, case_id: uuid.UUID) -> bool:
        return self._citizens_online.get(str(case_id), 0) > 0

    async def close(self) -> None:
        for queues in self._followers.values():
            for queue in queues:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)
