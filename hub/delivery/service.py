"""The outbox: what must be delivered, written in the transaction of the change that caused it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from hub.models import OutboxItem


async def enqueue(
    session: AsyncSession,
    *,
    channel: str,
    recipient: str,
    template: str,
    body: str,
    subject: str = "",
    language: str = "nl",
    party_id: uuid.UUID | None = None,
    case_id: uuid.UUID | None = None,
    message_id: uuid.UUID | None = None,
    context: dict[str, Any] | None = None,
) -> OutboxItem:
    """Add a delivery to the outbox; it is sent only if the surrounding transaction commits."""
    item = OutboxItem(
        channel=channel,
        recipient=recipient,
        template=template,
        body=body,
        subject=subject,
        language=language,
        party_id=party_id,
        case_id=case_id,
        message_id=message_id,
        meta=context or {},
    )
    session.add(item)
    await session.flush()
    return item
