"""Limits on logging in, per client (IP address) and per address tried (email or phone).

Every try counts, before the hub looks the address up: an address it knows and one it does
not drain their buckets alike and get the same 429, so the limit tells nobody who has an
account. Three kinds of bucket, token buckets from :mod:`hub.ratelimit.service` (shared
through Redis when ``redis_url`` is set):

- per client, every code request and login try (``login_tries_per_client``);
- per address, login tries: a one-time code or a staff password typed in
  (``login_tries_per_address``);
- per address, code requests: as many as the codes an address may be sent
  (:data:`hub.auth.citizens.CODE_REQUEST_LIMIT` in its window), so that a mail bomb stops
  here for every address, known or not.

Each refills evenly over ``login_limit_minutes`` (the code requests over their own window).
Addresses are kept only as keyed hashes, never as written.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Literal

import redis.asyncio as redis
from starlette.requests import Request

from hub.auth.citizens import CODE_REQUEST_LIMIT, CODE_REQUEST_WINDOW, normalise_address
from hub.config import Settings
from hub.errors import InvalidInput, TooManyRequests
from hub.ratelimit.clients import Network, client_address, trusted_networks
from hub.ratelimit.service import Buckets, Clock, MemoryBuckets, RedisBuckets

Purpose = Literal["code", "login"]
TOO_MANY_TRIES = "Too many tries. Wait the number of seconds in Retry-After, then try again."


class LoginsExhausted(TooManyRequests):
    """429: the client or the address has no tries left for now."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(TOO_MANY_TRIES, retry_after=retry_after)
        self.retry_after = retry_after


@dataclass
class LoginLimits:
    per_client: Buckets | None
    per_address: dict[Purpose, Buckets | None]
    trusted: tuple[Network, ...]
    key: bytes
    client: redis.Redis | None = None

    async def take(self, request: Request, *, purpose: Purpose, address: str | None) -> None:
        """Count one try at ``address`` (as the caller normalised it; None when it could not
        be) from the request's client; LoginsExhausted when either has none left."""
        if self.per_client is not None:
            client = client_address(request.scope, self.trusted)
            verdict = await self.per_client.take(f"client:{client}")
            if not verdict.allowed:
                raise LoginsExhausted(verdict.retry_after)
        buckets = self.per_address[purpose]
        if buckets is not None and address is not None:
            verdict = await buckets.take(f"{purpose}:{self._hashed(address)}")
            if not verdict.allowed:
                raise LoginsExhausted(verdict.retry_after)

    def _hashed(self, address: str) -> str:
        return hmac.new(self.key, address.encode(), hashlib.sha256).hexdigest()[:32]

    async def close(self) -> None:
        for buckets in (self.per_client, *self.per_address.values()):
            if buckets is not None and not isinstance(buckets, RedisBuckets):
                await buckets.close()
        if self.client is not None:
            await self.client.aclose()


def login_limits_for(settings: Settings, *, clock: Clock = time.time) -> LoginLimits:
    """The limits the settings ask for, in Redis when ``redis_url`` is set."""
    client = redis.Redis.from_url(settings.redis_url) if settings.redis_url else None
    seconds = settings.login_limit_minutes * 60

    def buckets(tries: int, over_seconds: float) -> Buckets | None:
        if tries <= 0:
            return None
        rate = tries / over_seconds
        if client is not None:
            return RedisBuckets(client, rate=rate, burst=tries, clock=clock, namespace="hub:login")
        return MemoryBuckets(rate=rate, burst=tries, clock=clock)

    return LoginLimits(
        per_client=buckets(settings.login_tries_per_client, seconds),
        per_address={
            "login": buckets(settings.login_tries_per_address, seconds),
            "code": buckets(CODE_REQUEST_LIMIT, CODE_REQUEST_WINDOW.total_seconds()),
        },
        trusted=trusted_networks(settings.trusted_proxies),
        key=settings.secret_key.get_secret_value().encode(),
        client=client,
    )


async def take_login_try(request: Request, *, purpose: Purpose, address: str | None) -> None:
    """Count a login try against the app's limits (LoginsExhausted when there are none left)."""
    limits: LoginLimits | None = getattr(request.app.state, "login_limits", None)
    if limits is not None:
        await limits.take(request, purpose=purpose, address=address)


def citizen_address(raw: str) -> str | None:
    """The address a citizen typed as the limits count it: ``email:…`` or ``phone:…`` in its
    normal form, so that ``Jan@Example.nl`` and ``jan@example.nl`` share a bucket; None
    for something that is no address (the login refuses it anyway)."""
    try:
        kind, value = normalise_address(raw)
    except InvalidInput:
        return None
    return f"{kind}:{value}"


def staff_address(raw: str) -> str:
    """A staff email address as the limits count it (as the login looks it up)."""
    return f"staff:{raw.strip().lower()}"
