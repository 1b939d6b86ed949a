"""The ASGI middleware that holds each agency API key to its token bucket.

Only requests that present an agency API key count; citizens and staff (session tokens)
are not limited here. The bucket is named by the key's public prefix, read from the header
without touching the database, and it is counted *before* the key is checked: a flood of
requests with a wrong secret under a real prefix drains that prefix's bucket instead of
costing a database query each. Guessing a live prefix (8 random characters) is not
practical, so this does not let a stranger starve an agency; a malformed key has no prefix
and is refused by authentication without a query.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.auth.api_keys import KEY_PREFIX, PREFIX_LENGTH
from hub.auth.dependencies import presented_credential
from hub.config import Settings
from hub.errors import HubError, problem
from hub.ratelimit.service import Buckets, Clock, buckets_for

TOO_MANY = (
    "This API key has made too many requests; retry after the number of seconds in Retry-After."
)


def bucket_name(scope: Scope) -> str | None:
    """The public prefix of the agency API key the request presents, if it presents one."""
    try:
        credential = presented_credential(Request(scope))
    except HubError:
        return None
    if credential is None or credential[0] != "api_key":
        return None
    parts = credential[1].split("_", 2)
    if len(parts) != 3 or f"{parts[0]}_" != KEY_PREFIX or len(parts[1]) != PREFIX_LENGTH:
        return None
    return parts[1]


class RateLimit:
    """Answers 429 with ``Retry-After`` when the key's bucket is empty.

    Settings: ``rate_limit_per_minute`` (0 turns the limit off) and ``rate_limit_burst``;
    the buckets are shared through Redis when ``redis_url`` is set.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        clock: Clock = time.time,
        buckets: Buckets | None = None,
    ) -> None:
        self.app = app
        if buckets is None and settings.rate_limit_per_minute > 0:
            buckets = buckets_for(
                redis_url=settings.redis_url,
                per_minute=settings.rate_limit_per_minute,
                burst=settings.rate_limit_burst,
                clock=clock,
            )
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and self.buckets is not None:
            await self.app(scope, receive, self._closing_on_shutdown(send))
            return
        name = bucket_name(scope) if scope["type"] == "http" and self.buckets else None
        if name is None or self.buckets is None:
            await self.app(scope, receive, send)
            return
        verdict = await self.buckets.take(name)
        if verdict.allowed:
            await self.app(scope, receive, send)
            return
        response = problem(429, "Too many requests", TOO_MANY, "too-many-requests", scope["path"])
        response.headers["Retry-After"] = str(verdict.retry_after)
        await response(scope, receive, send)

    def _closing_on_shutdown(self, send: Send) -> Send:
        buckets = self.buckets

        async def closing_send(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete" and buckets is not None:
                await buckets.close()
            await send(message)

        return closing_send
