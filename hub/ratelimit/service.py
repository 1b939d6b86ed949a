"""Token buckets, one per agency API key, named by the key's public prefix.

A bucket holds up to ``burst`` tokens and gains ``rate`` tokens a second; a request takes
one. :class:`MemoryBuckets` keeps them in the process (the embedded default);
:class:`RedisBuckets` keeps them in Redis hashes updated by one Lua script, so that every
process behind a load balancer draws from the same bucket. Both take the time from a clock
given to them (wall-clock seconds), so tests can move it; across hosts that clock must be
kept in step (NTP), and a clock that goes back never adds tokens.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

Clock = Callable[[], float]
# Buckets kept in memory, about: a full bucket is the same as none, so full ones are dropped.
MAX_MEMORY_BUCKETS = 10_000


@dataclass(frozen=True)
class Verdict:
    """Whether a request may go ahead, and if not, after how many whole seconds (≥ 1) a
    token will be there."""

    allowed: bool
    retry_after: int = 0


def _wait_seconds(missing: float, rate: float) -> int:
    return max(1, math.ceil(missing / rate))


class Buckets(Protocol):
    async def take(self, name: str) -> Verdict:
        """Take a token from bucket ``name`` if there is one."""
        ...

    async def close(self) -> None: ...


class MemoryBuckets:
    """Token buckets in this process only."""

    def __init__(self, *, rate: float, burst: int, clock: Clock = time.time) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._state: dict[str, tuple[float, float]] = {}

    async def take(self, name: str) -> Verdict:
        now = self.clock()
        tokens, stamp = self._state.get(name, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - stamp) * self.rate)
        stamp = max(now, stamp)
        if tokens >= 1:
            self._state[name] = (tokens - 1, stamp)
            self._bound(now)
            return Verdict(True)
        self._state[name] = (tokens, stamp)
        return Verdict(False, _wait_seconds(1 - tokens, self.rate))

    def _bound(self, now: float) -> None:
        # Only past twice the bound, down to the bound: a flood of made-up prefixes costs
        # each request a constant share of the clean-up, and memory stays bounded.
        if len(self._state) <= 2 * MAX_MEMORY_BUCKETS:
            return
        refill = self.burst / self.rate
        live = [(stamp, name) for name, (_, stamp) in self._state.items() if now - stamp < refill]
        # Past the bound even so, the least recently used go: they come back full, which errs
        # on the side of the caller, never against it.
        keep = {name for _, name in sorted(live, reverse=True)[:MAX_MEMORY_BUCKETS]}
        self._state = {name: state for name, state in self._state.items() if name in keep}

    async def close(self) -> None:
        self._state.clear()


# KEYS[1]: the bucket's hash. ARGV: rate (tokens/s), burst, now (s). Returns {allowed, tokens}
# with tokens as a string, because Redis turns Lua numbers into integers.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1])
local stamp = tonumber(state[2])
if tokens == nil or stamp == nil then
  tokens = burst
  stamp = now
end
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
stamp = math.max(now, stamp)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(stamp))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


class RedisBuckets:
    """Token buckets shared by every process using the same Redis.

    Each take is one atomic script run, so concurrent requests in different processes never
    spend the same token. A bucket left alone expires once it would be full again. When
    Redis cannot be reached the request is let through (and logged): the limit protects
    the hub, and failing closed would turn a Redis outage into an API outage.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        rate: float,
        burst: int,
        clock: Clock = time.time,
        namespace: str = "hub:ratelimit",
    ) -> None:
        self.client = client
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.namespace = namespace
        self._script = client.register_script(_TAKE)

    @classmethod
    def from_url(
        cls, url: str, *, rate: float, burst: int, clock: Clock = time.time
    ) -> RedisBuckets:
        return cls(redis.Redis.from_url(url), rate=rate, burst=burst, clock=clock)

    async def take(self, name: str) -> Verdict:
        try:
            allowed, tokens = await self._script(
                keys=[f"{self.namespace}:{name}"],
                args=[repr(self.rate), self.burst, repr(self.clock())],
            )
        except RedisError as error:
            log.warning("rate limit not checked, Redis failed: %s", type(error).__name__)
            return Verdict(True)
        if int(allowed) == 1:
            return Verdict(True)
        return Verdict(False, _wait_seconds(1 - float(tokens), self.rate))

    async def close(self) -> None:
        await self.client.aclose()


def buckets_for(
    *, redis_url: str | None, per_minute: float, burst: int, clock: Clock = time.time
) -> Buckets:
    """Shared buckets when Redis is configured, else buckets in this process."""
    rate = per_minute / 60
    if redis_url:
        return RedisBuckets.from_url(redis_url, rate=rate, burst=burst, clock=clock)
    return MemoryBuckets(rate=rate, burst=burst, clock=clock)
