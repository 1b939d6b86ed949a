"""Request and answer bodies of the webhooks API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field

from hub.models import WebhookDelivery, WebhookSubscription

EventType = Literal[
    "nl.interactionhub.notice.status-changed", "nl.interactionhub.case.message-received"
]
DeliveryStatus = Literal["pending", "sending", "delivered", "technical-failure"]


class SubscriptionIn(BaseModel):
    url: str = Field(max_length=2000, description="https URL the events are posted to.")
    event_types: list[EventType] = Field(min_length=1, max_length=10)


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    url: str
    event_types: list[str]
    active: bool
    created_at: dt.datetime


class NewSubscriptionOut(SubscriptionOut):
    secret: str = Field(description="The signing secret. Shown only in this answer: store it now.")


class DeliveryOut(BaseModel):
    id: uuid.UUID
    subscription_id: uuid.UUID
    event_type: str
    event: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


def subscription_out(subscription: WebhookSubscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=subscription.id,
        url=subscription.url,
        event_types=list(subscription.event_types),
        active=subscription.active,
        created_at=subscription.created_at,
    )


def delivery_out(delivery: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        subscription_id=delivery.subscription_id,
        event_type=str(delivery.event.get("type", "")),
        event=dict(delivery.event),
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        updated_at=delivery.updated_at,
    )
