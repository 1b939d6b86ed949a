"""Live fan-out of committed case events, and of ephemeral signals, to whoever follows a case.

In-process by default (:class:`MemoryBroker`); across processes through Redis pub/sub when
``HUB_REDIS_URL`` is set (:class:`hub.events.redis_broker.RedisBroker`). A follower that
misses something (a slow consumer, a lost Redis connection) is told so and resumes from the
log by sequence number: fan-out is a hint to look, the log is the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import json
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any, Protocol, cast

from hub.models import CaseEvent
from hub.observability.metrics import EVENTS_PUBLISHED

# How long "the citizen follows this case" holds without being refreshed by the connection.
PRESENCE_SECONDS = 15.0


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


@dataclass(frozen=True)
class Signal:
    """An ephemeral signal on a case (typing, presence, a read marker): fanned out like an
    event, never stored. ``sender`` is the connection that sent it, which does not get it
    back; ``audience`` is ``citizen`` (everyone on the case) or ``staff``."""

    case_id: str
    kind: str
    sender: str
    who: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    audience: str = "citizen"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Signal:
        return cls(**json.loads(raw))


class Interruption(enum.Enum):
    """What a follower gets instead of an item when fan-out broke down."""

    LAGGED = "lagged"  # items were dropped: resume from the log
    CLOSED = "closed"  # the broker is shutting down
    ENDED = "ended"  # the follower's owner asked it to stop


Item = LiveEvent | Signal | Interruption


class Follower:
    """One follower of one case: a bounded queue that never blocks the publisher.

    When the queue overflows it is emptied and the follower gets :attr:`Interruption.LAGGED`
    next, so it knows to resume from the log.
    """

    def __init__(self, case_id: str, queue_size: int) -> None:
        self.case_id = case_id
        self._queue: asyncio.Queue[Item] = asyncio.Queue(queue_size)

    def put(self, item: Item) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(Interruption.LAGGED)

    async def get(self) -> Item:
        return await self._queue.get()

    def get_nowait(self) -> Item | None:
        with contextlib.suppress(asyncio.QueueEmpty):
            return self._queue.get_nowait()
        return None


class LocalFanout:
    """The followers of this process, by case."""

    def __init__(self, queue_size: int = 1000) -> None:
        self.queue_size = queue_size
        self._followers: dict[str, set[Follower]] = defaultdict(set)

    def add(self, case_id: uuid.UUID | str) -> Follower:
        follower = Follower(str(case_id), self.queue_size)
        self._followers[follower.case_id].add(follower)
        return follower

    def remove(self, follower: Follower) -> None:
        followers = self._followers.get(follower.case_id)
        if followers is None:
            return
        followers.discard(follower)
        if not followers:
            del self._followers[follower.case_id]

    def deliver(self, item: LiveEvent | Signal) -> None:
        for follower in list(self._followers.get(item.case_id, ())):
            follower.put(item)

    def interrupt(self, reason: Interruption) -> None:
        for followers in list(self._followers.values()):
            for follower in list(followers):
                follower.put(reason)


class Following:
    """``async with broker.follow(case_id) as follower:`` — registered once entered, so that
    nothing published after ``__aenter__`` returns is missed."""

    def __init__(self, broker: Broker, case_id: uuid.UUID | str) -> None:
        self._broker = broker
        self._case_id = case_id
        self._follower: Follower | None = None

    async def __aenter__(self) -> Follower:
        self._follower = await self._broker.add_follower(self._case_id)
        return self._follower

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._follower is not None:
            await self._broker.remove_follower(self._follower)


class Broker(Protocol):
    async def publish(self, event: LiveEvent) -> None:
        """Fan a committed event out to the case's followers, in every process."""
        ...

    async def signal(self, signal: Signal) -> None:
        """Fan an ephemeral signal out to the case's followers, in every process."""
        ...

    async def add_follower(self, case_id: uuid.UUID | str) -> Follower: ...

    async def remove_follower(self, follower: Follower) -> None: ...

    def follow(self, case_id: uuid.UUID | str) -> Following: ...

    def subscribe(self, case_id: uuid.UUID) -> AsyncIterator[LiveEvent]: ...

    async def citizen_here(self, case_id: uuid.UUID | str, connection_id: str) -> None:
        """The connection ``connection_id`` of the citizen (or their representative) follows
        the case; call again within :data:`PRESENCE_SECONDS` to keep it so."""
        ...

    async def citizen_gone(self, case_id: uuid.UUID | str, connection_id: str) -> None: ...

    async def citizen_online(self, case_id: uuid.UUID) -> bool:
        """Whether the citizen (or their representative) follows the case live right now."""
        ...

    async def claim_once(self, key: str, seconds: float) -> bool:
        """True the first time ``key`` is claimed within ``seconds``, False after: makes a
        ticket single-use across processes."""
        ...

    async def close(self) -> None: ...


class LocalFollowers:
    """What every broker does the same: its followers in this process, on ``self.local``."""

    local: LocalFanout

    async def add_follower(self, case_id: uuid.UUID | str) -> Follower:
        return self.local.add(case_id)

    async def remove_follower(self, follower: Follower) -> None:
        self.local.remove(follower)

    def follow(self, case_id: uuid.UUID | str) -> Following:
        return Following(cast(Broker, self), case_id)

    async def subscribe(self, case_id: uuid.UUID) -> AsyncIterator[LiveEvent]:
        """Yield events of ``case_id`` published from now on; ends when the follower lags."""
        async for event in events_of(cast(Broker, self), case_id):
            yield event


class MemoryBroker(LocalFollowers):
    """In-process fan-out, presence and single-use claims, for the embedded hub (one process).

    ``publish`` never blocks: a follower whose queue is full is told it lagged.
    """

    def __init__(self, queue_size: int = 1000) -> None:
        self.local = LocalFanout(queue_size)
        self._present: dict[str, dict[str, float]] = defaultdict(dict)
        self._claims: dict[str, float] = {}

    async def publish(self, event: LiveEvent) -> None:
        EVENTS_PUBLISHED.labels(event.kind).inc()
        self.local.deliver(event)

    async def signal(self, signal: Signal) -> None:
        self.local.deliver(signal)

    async def citizen_here(self, case_id: uuid.UUID | str, connection_id: str) -> None:
        self._present[str(case_id)][connection_id] = time.monotonic() + PRESENCE_SECONDS

    async def citizen_gone(self, case_id: uuid.UUID | str, connection_id: str) -> None:
        key = str(case_id)
        self._present[key].pop(connection_id, None)
        if not self._present[key]:
            del self._present[key]

    def citizen_joined(self, case_id: uuid.UUID) -> None:
        """Mark the citizen present without a connection (tests of reply routing)."""
        self._present[str(case_id)]["-"] = float("inf")

    def citizen_left(self, case_id: uuid.UUID) -> None:
        self._present.pop(str(case_id), None)

    async def citizen_online(self, case_id: uuid.UUID) -> bool:
        now = time.monotonic()
        return any(until > now for until in self._present.get(str(case_id), {}).values())

    async def claim_once(self, key: str, seconds: float) -> bool:
        now = time.monotonic()
        if len(self._claims) > 10_000:
            self._claims = {k: until for k, until in self._claims.items() if until > now}
        if self._claims.get(key, 0.0) > now:
            return False
        self._claims[key] = now + seconds
        return True

    async def close(self) -> None:
        self.local.interrupt(Interruption.CLOSED)


async def events_of(broker: Broker, case_id: uuid.UUID | str) -> AsyncIterator[LiveEvent]:
    """The case's events published from the moment of the first ``__anext__``; ends when the
    follower lags or the broker closes (signals are skipped)."""
    async with broker.follow(case_id) as follower:
        while isinstance(item := await follower.get(), LiveEvent | Signal):
            if isinstance(item, LiveEvent):
                yield item


async def connect_broker(redis_url: str | None) -> Broker:
    """The broker the settings ask for: Redis pub/sub when ``redis_url`` is set, else in
    memory. Raises when Redis cannot be reached, so a misconfigured hub does not start."""
    if not redis_url:
        return MemoryBroker()
    from hub.events.redis_broker import RedisBroker

    return await RedisBroker.connect(redis_url)
