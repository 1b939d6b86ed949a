"""Webhook subscriptions of agencies and the CloudEvents written for them.

Events follow CloudEvents 1.0 in structured JSON mode, with the NL GOV profile for
CloudEvents (Logius) as guide. Facts from the profile used here:

- ``specversion`` is ``1.0``; ``id`` SHOULD be a UUID, and ``source`` + ``id`` is unique
  per distinct event;
- ``source`` SHOULD be a URN in the ``nld`` namespace naming the organisation and then the
  system that publishes the event (``urn:nld:...``); we use ``urn:nld:interactionhub``
  followed by the hub's host, so two hubs never share a source;
- ``type`` is a reverse-DNS name saying what happened, here ``nl.interactionhub.…``;
- ``time`` is RFC 3339 in UTC; ``subject`` names the thing the event is about (an id, never
  personal data), ``datacontenttype`` is ``application/json``, and ``dataref`` may point at
  where the full resource can be fetched, so ``data`` stays small.

Every event is written in the caller's transaction, one :class:`WebhookDelivery` per active
subscription of the agency for its type: an event is delivered exactly when the change it
describes was committed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.db import utcnow
from hub.errors import Conflict, InvalidInput, NotFound
from hub.models import Case, Message, Notice, WebhookDelivery, WebhookSubscription
from hub.observability.logging import request_id_var
from hub.webhooks.signing import new_secret

NOTICE_STATUS_CHANGED = "nl.interactionhub.notice.status-changed"
CASE_MESSAGE_RECEIVED = "nl.interactionhub.case.message-received"
EVENT_TYPES = (NOTICE_STATUS_CHANGED, CASE_MESSAGE_RECEIVED)

SOURCE_PREFIX = "urn:nld:interactionhub"
# A CloudEvents extension attribute (lower-case letters and digits, at most 20).
REQUEST_ID_ATTRIBUTE = "hubrequestid"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
DELIVERY_STATUSES = ("pending", "sending", "delivered", "technical-failure")


def check_url(url: str, *, allow_local_http: bool) -> str:
    """The subscription URL as given, if it is one we will post to; else :class:`InvalidInput`.

    Only https, except plain http to this machine in development and test. No user name or
    password in the URL (the signature is the credential) and no fragment. Outside
    development and test, an address on this machine or a private network is refused when
    given as an IP address or ``localhost`` (a host name is not resolved here).
    """
    if len(url) > 2000 or any(ch in url for ch in "\r\n\t "):
        raise InvalidInput("The URL is too long or contains white space.")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host:
        raise InvalidInput("The URL has no host.")
    if parts.username or parts.password or parts.fragment:
        raise InvalidInput("The URL may not contain a user name, password or fragment.")
    if not allow_local_http and internal(host):
        raise InvalidInput("The URL may not point at this machine or a private network.")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and allow_local_http and host in LOCAL_HOSTS:
        return url
    raise InvalidInput("The URL must use https.")


def internal(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return not address.is_global


async def subscribe(
    session: AsyncSession,
    *,
    agency_id: str,
    url: str,
    event_types: list[str],
    allow_local_http: bool,
) -> WebhookSubscription:
    """A new active subscription with a fresh signing secret (the caller shows it once)."""
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown or not event_types:
        raise InvalidInput(
            f"Unknown event types {unknown}; choose from: {', '.join(EVENT_TYPES)}."
            if unknown
            else f"Choose at least one event type from: {', '.join(EVENT_TYPES)}."
        )
    subscription = WebhookSubscription(
        agency_id=agency_id,
        url=check_url(url, allow_local_http=allow_local_http),
        secret=new_secret(),
        event_types=sorted(set(event_types)),
    )
    session.add(subscription)
    await session.flush()
    return subscription


async def subscriptions_of(session: AsyncSession, agency_id: str) -> list[WebhookSubscription]:
    query = (
        select(WebhookSubscription)
        .where(WebhookSubscription.agency_id == agency_id)
        .order_by(col(WebhookSubscription.created_at))
    )
    return list((await session.exec(query)).all())


async def subscription_of(
    session: AsyncSession, agency_id: str, subscription_id: uuid.UUID
) -> WebhookSubscription:
    """The agency's own subscription; another agency's is 404, as if there were none."""
    subscription = await session.get(WebhookSubscription, subscription_id)
    if subscription is None or subscription.agency_id != agency_id:
        raise NotFound("No such webhook subscription.")
    return subscription


async def deactivate(
    session: AsyncSession, agency_id: str, subscription_id: uuid.UUID
) -> WebhookSubscription:
    """Stop sending to a subscription; deliveries still waiting for it will not be sent."""
    subscription = await subscription_of(session, agency_id, subscription_id)
    subscription.active = False
    session.add(subscription)
    return subscription


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def cloud_event(
    *,
    type: str,
    subject: str,
    data: dict[str, Any],
    source: str,
    dataref: str | None = None,
    time: dt.datetime | None = None,
) -> dict[str, Any]:
    """One CloudEvent 1.0 in structured JSON mode."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "type": type,
        "source": source,
        "id": str(uuid.uuid4()),
        "time": rfc3339(time or utcnow()),
        "subject": subject,
        "datacontenttype": "application/json",
    }
    if dataref is not None:
        event["dataref"] = dataref
    # CloudEvents extension attribute: the id of the request that caused the event, so an
    # agency can quote it to us; the worker sends it again as X-Request-ID.
    request_id = request_id_var.get()
    if request_id is not None:
        event[REQUEST_ID_ATTRIBUTE] = request_id
    event["data"] = data
    return event


def source_for(base_url: str | None) -> str:
    """``urn:nld:interactionhub:<host>`` for a hub at ``base_url``."""
    host = urlsplit(base_url or "").hostname
    return f"{SOURCE_PREFIX}:{host}" if host else SOURCE_PREFIX


async def emit(
    session: AsyncSession,
    *,
    agency_id: str,
    type: str,
    subject: str,
    data: dict[str, Any],
    dataref: str | None = None,
    base_url: str | None = None,
) -> list[WebhookDelivery]:
    """Queue one CloudEvent for every active subscription of the agency to ``type``.

    Nothing is sent here: the rows are part of the caller's transaction, and the worker
    (:func:`hub.webhooks.worker.deliver_webhooks`) posts them once it has committed. Each
    subscription gets its own copy of the same event (same ``id``). ``data`` must hold JSON
    values; keep personal data out of ``subject``.
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {type!r}")
    active = [s for s in await subscriptions_of(session, agency_id) if s.active]
    wanted = [s for s in active if type in s.event_types]
    if not wanted:
        return []
    event = cloud_event(
        type=type, subject=subject, data=data, source=source_for(base_url), dataref=dataref
    )
    deliveries = [WebhookDelivery(subscription_id=s.id, event=dict(event)) for s in wanted]
    session.add_all(deliveries)
    await session.flush()
    return deliveries


async def deliveries_of(
    session: AsyncSession, agency_id: str, *, status: str | None = None, limit: int = 100
) -> list[WebhookDelivery]:
    """The agency's deliveries, newest first."""
    query = (
        select(WebhookDelivery)
        .join(
            WebhookSubscription,
            col(WebhookSubscription.id) == col(WebhookDelivery.subscription_id),
        )
        .where(WebhookSubscription.agency_id == agency_id)
        .order_by(col(WebhookDelivery.created_at).desc(), col(WebhookDelivery.id))
        .limit(limit)
    )
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    return list((await session.exec(query)).all())


async def retry(session: AsyncSession, agency_id: str, delivery_id: uuid.UUID) -> WebhookDelivery:
    """Send a failed delivery again, with a fresh attempt budget, as soon as the worker runs.

    Only a ``technical-failure`` can be retried, and only while its subscription is active.
    """
    delivery = await session.get(WebhookDelivery, delivery_id)
    subscription = (
        await session.get(WebhookSubscription, delivery.subscription_id) if delivery else None
    )
    if delivery is None or subscription is None or subscription.agency_id != agency_id:
        raise NotFound("No such webhook delivery.")
    if delivery.status != "technical-failure":
        raise Conflict(f"Only a failed delivery can be retried; this one is {delivery.status}.")
    if not subscription.active:
        raise Conflict("The subscription is no longer active; subscribe again first.")
    now = utcnow()
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.claimed_until = None
    delivery.updated_at = now
    session.add(delivery)
    return delivery


def api_link(base_url: str | None, path: str) -> str:
    """Where the agency reads the full resource: absolute when the hub's public URL is known,
    else a path on the hub (``dataref`` is a URI-reference, so a relative one is valid)."""
    return f"{base_url.rstrip('/')}{path}" if base_url else path


async def notice_status_changed(
    session: AsyncSession, notice: Notice, *, base_url: str | None = None
) -> list[WebhookDelivery]:
    """Queue ``nl.interactionhub.notice.status-changed`` for a notice whose status changed.

    The data holds ids, the status and the channel, no text or personal data: the agency
    reads the notice itself at ``dataref`` with its key.
    """
    return await emit(
        session,
        agency_id=notice.agency_id,
        type=NOTICE_STATUS_CHANGED,
        subject=str(notice.id),
        data={
            "notice_id": str(notice.id),
            "status": notice.status,
            "reason": notice.reason,
            "channel": notice.channel,
            "case_id": str(notice.case_id) if notice.case_id else None,
            "changed_at": rfc3339(notice.updated_at),
        },
        dataref=api_link(base_url, f"/api/notices/{notice.id}"),
        base_url=base_url,
    )


async def message_received(
    session: AsyncSession, case: Case, message: Message, *, base_url: str | None = None
) -> list[WebhookDelivery]:
    """Queue ``nl.interactionhub.case.message-received`` for a citizen's message on a case.

    Only for inbound messages (others return ``[]``). The body is not in the event: the
    agency reads the thread at ``dataref``, where access is checked and logged.
    """
    if message.direction != "inbound":
        return []
    return await emit(
        session,
        agency_id=case.agency_id,
        type=CASE_MESSAGE_RECEIVED,
        subject=str(case.id),
        data={
            "case_id": str(case.id),
            "case_reference": case.reference,
            "message_id": str(message.id),
            "channel": message.channel,
            "received_at": rfc3339(message.created_at),
        },
        dataref=api_link(base_url, f"/api/cases/{case.id}/messages"),
        base_url=base_url,
    )
