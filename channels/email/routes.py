"""Inbound mail posted by a mail provider as raw MIME, authenticated by a shared secret."""

from __future__ import annotations

import hmac
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from channels.email.inbound import receive_mail
from hub.dependencies import BrokerDep, SessionDep, SettingsDep
from hub.errors import HubError, InvalidInput, NotAuthenticated, NotFound

router = APIRouter(prefix="/api", tags=["email"])


class MailTooLarge(HubError):
    status = 413
    title = "Content too large"
    type_suffix = "content-too-large"


class MailReceived(BaseModel):
    """What became of the posted mail: a message on a case, a review item, a delivery report
    (a bounce) on a mail the hub sent, or nothing new (the same Message-ID was applied
    before)."""

    outcome: Literal["message", "review", "duplicate", "delivery_status"]
    mail_message_id: str
    message_id: uuid.UUID | None = None
    case_id: uuid.UUID | None = None
    review_item_id: uuid.UUID | None = None
    outbox_id: uuid.UUID | None = Field(
        None, description="For a bounce or other delivery report: the delivery it is about."
    )


def require_mail_secret(request: Request, settings: SettingsDep) -> None:
    """The provider's ``Authorization: Bearer <HUB_INBOUND_MAIL_SECRET>``, compared in
    constant time. Without the setting the endpoint does not exist."""
    secret = settings.inbound_mail_secret
    if secret is None or not secret.get_secret_value():
        raise NotFound("Not found.")
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    expected = secret.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), expected):
        raise NotAuthenticated("Give the inbound mail secret as 'Authorization: Bearer <secret>'.")


MailSecret = Annotated[None, Depends(require_mail_secret)]


@router.post(
    "/inbound/email",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    responses={
        401: {"description": "The shared secret is missing or wrong."},
        404: {"description": "HUB_INBOUND_MAIL_SECRET is not set: the endpoint is off."},
        413: {"description": "The mail is larger than HUB_MAX_MAIL_BYTES."},
    },
)
async def inbound_email(
    _: MailSecret,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    broker: BrokerDep,
) -> MailReceived:
    """Take one raw MIME message (the request body, as a mail provider forwards it) and put
    it on its case by reply token or thread headers, or in the review queue."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > settings.max_mail_bytes:
            raise MailTooLarge(f"The mail is larger than {settings.max_mail_bytes:,} bytes.")
    head = bytes(raw[:65536]).lower()
    if not raw.strip() or (b"from:" not in head and b"message-id:" not in head):
        raise InvalidInput("The body must be a raw MIME mail message (RFC 5322).")
    outcome = await receive_mail(
        session, raw=bytes(raw), settings=settings, via="http", broker=broker
    )
    return MailReceived(
        outcome=outcome.outcome,
        mail_message_id=outcome.message_id,
        message_id=outcome.message.id if outcome.message else None,
        case_id=outcome.message.case_id if outcome.message else None,
        review_item_id=outcome.review_item.id if outcome.review_item else None,
        outbox_id=outcome.outbox_item.id if outcome.outbox_item else None,
    )
