"""Fan-out across hub processes through Redis pub/sub (``HUB_REDIS_URL``).

Every process publishes to one channel and listens on it; each delivers to its own followers
and skips what it published itself (it delivered that locally already, without the round
trip). One channel for all cases keeps subscribing off the path of a ``follow``: the process
subscribed once, at start, and a new follower is registered locally at once. The price is
that every process sees every case's events; that is fine for an agency's traffic, and the
channel can be sharded by case when it is not.

Redis pub/sub delivers at most once. When the listening connection breaks, every local
follower is told it lagged and resumes from the log, so nothing is lost to a Redis restart.

Presence ("the citizen follows this case") is a sorted set per case of connection ids scored
by when they lapse, with a time-to-live on the key; single-use claims are ``SET NX EX``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from hub.events.fanout import (
    PRESENCE_SECONDS,
    Interruption,
    LiveEvent,
    LocalFanout,
    LocalFollowers,
    Signal,
)
from hub.observability.metrics import EVENTS_PUBLISHED

log = logging.getLogger(__name__)

RECONNECT_SECONDS = 0.5


class RedisBroker(LocalFollowers):
    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "hub",
        origin: str | None = None,
        queue_size: int = 1000,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.channel = f"{prefix}:live"
        self.local = LocalFanout(queue_size)
        self.origin = origin or uuid.uuid4().hex
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._closing = False

    @classmethod
    async def connect(cls, url: str, *, prefix: str = "hub") -> RedisBroker:
        """Connect, subscribe, and return once the subscription is confirmed."""
        origin = uuid.uuid4().hex
        # Named, so an operator can tell the hub's connections apart in CLIENT LIST.
        client = redis.Redis.from_url(url, client_name=f"{prefix}-live-{origin[:12]}")
        try:
            await client.ping()
        except RedisError:
            await client.aclose()
            raise
        broker = cls(client, prefix=prefix, origin=origin)
        broker._listener = asyncio.create_task(broker._listen(), name="hub-redis-fanout")
        await asyncio.wait_for(broker._subscribed.wait(), 10)
        return broker

    # --- fan-out ---------------------------------------------------------------------------

    async def publish(self, event: LiveEvent) -> None:
        EVENTS_PUBLISHED.labels(event.kind).inc()
        self.local.deliver(event)
        await self._send("event", event.to_json())

    async def signal(self, signal: Signal) -> None:
        self.local.deliver(signal)
        await self._send("signal", signal.to_json())

    async def _send(self, kind: str, data: str) -> None:
        envelope = json.dumps({"origin": self.origin, "kind": kind, "data": data})
        try:
            await self.client.publish(self.channel, envelope)
        except RedisError as error:
            # The change is committed; other processes' followers resume from the log when
            # their own connection to Redis comes back.
            log.warning("Could not publish a live %s to Redis: %s", kind, type(error).__name__)

    async def _listen(self) -> None:
        while not self._closing:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                while not self._closing:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        if self._subscribed.is_set():
                            # A reconnect: what was published meanwhile is in the log only.
                            self.local.interrupt(Interruption.LAGGED)
                        self._subscribed.set()
                    elif message["type"] == "message":
                        self._dispatch(message["data"])
            except (RedisError, OSError) as error:
                if self._closing:
                    break
                log.warning("Lost the Redis fan-out connection: %s", type(error).__name__)
                self.local.interrupt(Interruption.LAGGED)
                await asyncio.sleep(RECONNECT_SECONDS)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]

    def _dispatch(self, raw: bytes | str) -> None:
        try:
            envelope: dict[str, Any] = json.loads(raw)
            if envelope.get("origin") == self.origin:
                return
            if envelope.get("kind") == "event":
                self.local.deliver(LiveEvent.from_json(envelope["data"]))
            elif envelope.get("kind") == "signal":
                self.local.deliver(Signal.from_json(envelope["data"]))
        except (ValueError, TypeError, KeyError):
            log.warning("Ignored a malformed message on the Redis fan-out channel")

    # --- presence and claims ----------------------------------------------------------------

    def _presence_key(self, case_id: uuid.UUID | str) -> str:
        return f"{self.prefix}:online:{case_id}"

    async def citizen_here(self, case_id: uuid.UUID | str, connection_id: str) -> None:
        key = self._presence_key(case_id)
        lapses = time.time() + PRESENCE_SECONDS
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.zadd(key, {connection_id: lapses})
                pipe.zremrangebyscore(key, "-inf", time.time())
                pipe.expire(key, int(PRESENCE_SECONDS) + 1)
                await pipe.execute()
        except RedisError as error:
            # Presence only steers where a reply goes; the chat itself goes on without it.
            log.warning("Could not record presence in Redis: %s", type(error).__name__)

    async def citizen_gone(self, case_id: uuid.UUID | str, connection_id: str) -> None:
        with contextlib.suppress(RedisError):
            await self.client.zrem(self._presence_key(case_id), connection_id)

    async def citizen_online(self, case_id: uuid.UUID) -> bool:
        try:
            count = await self.client.zcount(self._presence_key(case_id), time.time(), "+inf")
        except RedisError:
            return False
        return int(count) > 0

    async def claim_once(self, key: str, seconds: float) -> bool:
        claimed = await self.client.set(
            f"{self.prefix}:claim:{key}", b"1", nx=True, ex=max(1, int(seconds) + 1)
        )
        return bool(claimed)

    async def close(self) -> None:
        self._closing = True
        self.local.interrupt(Interruption.CLOSED)
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self.client.aclose()
