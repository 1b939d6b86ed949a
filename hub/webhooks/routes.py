"""Webhooks API: an agency (its system with the API key, or its admin staff) subscribes
to events, lists and ends its subscriptions, and sees and retries failed deliveries.

Everything is scoped to the caller's agency: another agency's subscription or delivery is
404, as if it did not exist.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from hub.access.service import Viewer
from hub.auth.dependencies import CurrentStaffOrAgency
from hub.dependencies import SessionDep, SettingsDep
from hub.errors import Forbidden
from hub.webhooks.schemas import (
    DeliveryOut,
    DeliveryStatus,
    NewSubscriptionOut,
    SubscriptionIn,
    SubscriptionOut,
    delivery_out,
    subscription_out,
)
from hub.webhooks.service import deactivate, deliveries_of, retry, subscribe, subscriptions_of

router = APIRouter(prefix="/api", tags=["webhooks"])


def webhook_agency(viewer: Viewer) -> str:
    """The agency whose webhooks the caller manages: its system, or its admin staff."""
    if viewer.agency_id is None:
        raise Forbidden("Only an agency's system or its admins can manage webhooks.")
    if viewer.kind == "staff" and viewer.role != "admin":
        raise Forbidden("Only an agency's admins can manage webhooks.")
    return viewer.agency_id


@router.post(
    "/webhook-subscriptions",
    status_code=status.HTTP_201_CREATED,
    response_model=NewSubscriptionOut,
)
async def create_subscription(
    body: SubscriptionIn,
    viewer: CurrentStaffOrAgency,
    session: SessionDep,
    settings: SettingsDep,
) -> NewSubscriptionOut:
    subscription = await subscribe(
        session,
        agency_id=webhook_agency(viewer),
        url=body.url,
        event_types=list(body.event_types),
        allow_local_http=settings.environment in ("development", "test"),
    )
    out = subscription_out(subscription)
    return NewSubscriptionOut(**out.model_dump(), secret=subscription.secret)


@router.get("/webhook-subscriptions", response_model=list[SubscriptionOut])
async def list_subscriptions(
    viewer: CurrentStaffOrAgency, session: SessionDep
) -> list[SubscriptionOut]:
    agency_id = webhook_agency(viewer)
    return [subscription_out(s) for s in await subscriptions_of(session, agency_id)]


@router.delete("/webhook-subscriptions/{subscription_id}", response_model=SubscriptionOut)
async def end_subscription(
    subscription_id: uuid.UUID, viewer: CurrentStaffOrAgency, session: SessionDep
) -> SubscriptionOut:
    subscription = await deactivate(session, webhook_agency(viewer), subscription_id)
    return subscription_out(subscription)


@router.get("/webhook-deliveries", response_model=list[DeliveryOut])
async def list_deliveries(
    viewer: CurrentStaffOrAgency,
    session: SessionDep,
    delivery_status: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeliveryOut]:
    agency_id = webhook_agency(viewer)
    deliveries = await deliveries_of(session, agency_id, status=delivery_status, limit=limit)
    return [delivery_out(d) for d in deliveries]


@router.post("/webhook-deliveries/{delivery_id}/retry", response_model=DeliveryOut)
async def retry_delivery(
    delivery_id: uuid.UUID, viewer: CurrentStaffOrAgency, session: SessionDep
) -> DeliveryOut:
    return delivery_out(await retry(session, webhook_agency(viewer), delivery_id))
