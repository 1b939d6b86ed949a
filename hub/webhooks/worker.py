"""Posting queued CloudEvents to agencies' webhook URLs, with retries and backoff.

Rows are claimed in one short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
workers never take the same row; a claim expires, so a crashed worker's rows come back),
the HTTP calls are made with no database session open, and each outcome is written in its
own short transaction. Outcomes:

- 2xx: ``delivered``;
- 410 Gone: the receiver says the endpoint is gone for good: ``technical-failure`` and the
  subscription is deactivated;
- any other 4xx except 408 and 429, and any 1xx or 3xx (redirects are not followed, so a
  receiver cannot send the hub elsewhere): the receiver refuses this event (a bad
  signature, say), which a retry will not change: ``technical-failure`` at once;
- 408, 429, 5xx, timeouts and connection errors: tried again after 2, 4, 8 … minutes
  (capped at 6 hours) until :data:`MAX_ATTEMPTS`, then ``technical-failure``.

A ``technical-failure`` stays visible to the agency and can be retried by it. Log lines
carry delivery ids and status codes only: never the secret, the body or the URL's query.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlmodel import col, or_, select

from hub.db import Database, utcnow
from hub.models import WebhookDelivery, WebhookSubscription
from hub.webhooks.service import REQUEST_ID_ATTRIBUTE
from hub.webhooks.signing import signed_headers

log = logging.getLogger("hub.webhooks")

CLAIM_SECONDS = 120
MAX_ATTEMPTS = 8
TIMEOUT_SECONDS = 10.0


def backoff(attempts: int) -> dt.timedelta:
    """2, 4, 8 … minutes after the n-th failed attempt, capped at six hours."""
    return dt.timedelta(minutes=min(2**attempts, 360))


@dataclass(frozen=True)
class Claimed:
    delivery_id: uuid.UUID
    subscription_id: uuid.UUID
    url: str
    secret: str
    event: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """What one attempt gave: a status code, or an error before any answer came."""

    status_code: int | None = None
    error: str | None = None


async def claim_deliveries(
    database: Database, *, limit: int = 20, claim_seconds: float = CLAIM_SECONDS
) -> list[Claimed]:
    """Claim up to ``limit`` due deliveries and commit the claim before returning.

    Deliveries of a subscription deactivated meanwhile are closed as failed, not sent.
    """
    now = utcnow()
    async with database.session() as session:
        query = (
            select(WebhookDelivery)
            .where(col(WebhookDelivery.status).in_(("pending", "sending")))
            .where(WebhookDelivery.next_attempt_at <= now)
            .where(
                or_(
                    col(WebhookDelivery.claimed_until).is_(None),
                    col(WebhookDelivery.claimed_until) < now,
                )
            )
            .order_by(col(WebhookDelivery.next_attempt_at))
            .limit(limit)
        )
        if database.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        deliveries = list((await session.exec(query)).all())
        claimed: list[Claimed] = []
        for delivery in deliveries:
            subscription = await session.get(WebhookSubscription, delivery.subscription_id)
            delivery.updated_at = now
            if subscription is None or not subscription.active:
                delivery.status = "technical-failure"
                delivery.last_error = "The subscription was deactivated before delivery."
            else:
                delivery.status = "sending"
                delivery.claimed_until = now + dt.timedelta(seconds=claim_seconds)
                claimed.append(
                    Claimed(
                        delivery_id=delivery.id,
                        subscription_id=subscription.id,
                        url=subscription.url,
                        secret=subscription.secret,
                        event=dict(delivery.event),
                    )
                )
            session.add(delivery)
    return claimed


async def post_event(
    client: httpx.AsyncClient, claimed: Claimed, *, timeout_seconds: float = TIMEOUT_SECONDS
) -> Outcome:
    """POST one signed event; never raises for what the network or the receiver does."""
    body = json.dumps(claimed.event, separators=(",", ":"), ensure_ascii=False).encode()
    headers = signed_headers(
        claimed.secret,
        webhook_id=str(claimed.delivery_id),
        timestamp=int(utcnow().timestamp()),
        body=body,
    )
    request_id = claimed.event.get(REQUEST_ID_ATTRIBUTE)
    if isinstance(request_id, str):
        headers["X-Request-ID"] = request_id
    try:
        response = await client.post(
            claimed.url,
            content=body,
            headers=headers,
            timeout=timeout_seconds,
            follow_redirects=False,
        )
    except httpx.TimeoutException:
        return Outcome(error=f"No answer within {timeout_seconds:g} seconds.")
    except httpx.HTTPError as exc:
        return Outcome(error=f"Could not connect: {type(exc).__name__}.")
    return Outcome(status_code=response.status_code)


def retryable(outcome: Outcome) -> bool:
    code = outcome.status_code
    return code is None or code in (408, 429) or code >= 500


async def record_outcome(database: Database, claimed: Claimed, outcome: Outcome) -> str:
    """Write one attempt's outcome; returns the delivery's new status."""
    now = utcnow()
    async with database.session() as session:
        delivery = await session.get(WebhookDelivery, claimed.delivery_id)
        if delivery is None:
            return "gone"
        delivery.attempts += 1
        delivery.claimed_until = None
        delivery.updated_at = now
        code = outcome.status_code
        if code is not None and 200 <= code < 300:
            delivery.status = "delivered"
            delivery.last_error = None
        elif code == 410:
            delivery.status = "technical-failure"
            delivery.last_error = "HTTP 410 Gone: the subscription was deactivated."
            subscription = await session.get(WebhookSubscription, claimed.subscription_id)
            if subscription is not None:
                subscription.active = False
                session.add(subscription)
            log.warning("webhook subscription %s deactivated after 410", claimed.subscription_id)
        else:
            delivery.last_error = outcome.error or f"HTTP {code}"
            if not retryable(outcome) or delivery.attempts >= MAX_ATTEMPTS:
                delivery.status = "technical-failure"
            else:
                delivery.status = "sending"
                delivery.next_attempt_at = now + backoff(delivery.attempts)
        session.add(delivery)
        log.info(
            "webhook delivery %s attempt %d: %s",
            delivery.id,
            delivery.attempts,
            code if code is not None else "no answer",
        )
        return delivery.status


async def deliver_webhooks(
    database: Database,
    *,
    client: httpx.AsyncClient | None = None,
    limit: int = 20,
    timeout_seconds: float = TIMEOUT_SECONDS,
) -> int:
    """Post the due deliveries (at most ``limit``) once each; returns how many were tried.

    Without a ``client``, one is made only when something is due. The database is not held
    during the HTTP calls; calls are made one after another, so a
    batch takes at most ``limit * timeout_seconds`` seconds, and the claim lasts longer than that.
    """
    claimed = await claim_deliveries(
        database, limit=limit, claim_seconds=max(CLAIM_SECONDS, limit * timeout_seconds + 60)
    )
    if not claimed:
        return 0
    if client is None:
        async with httpx.AsyncClient() as own:
            return await post_all(database, own, claimed, timeout_seconds=timeout_seconds)
    return await post_all(database, client, claimed, timeout_seconds=timeout_seconds)


async def post_all(
    database: Database,
    client: httpx.AsyncClient,
    claimed: list[Claimed],
    *,
    timeout_seconds: float,
) -> int:
    for item in claimed:
        outcome = await post_event(client, item, timeout_seconds=timeout_seconds)
        await record_outcome(database, item, outcome)
    return len(claimed)
