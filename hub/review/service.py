"""The review queue: inbound mail and texts that matched no case, kept for staff.

Nothing that arrives is dropped. Staff attach an item to a party and case (it becomes a
message there) or discard it; a sender's address is linked to a party only once verified.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.models import InboundReceipt, ReviewItem


async def add_review_item(
    session: AsyncSession,
    *,
    channel: str,
    sender: str,
    body: str,
    reason: str,
    subject: str | None = None,
    original_body: str | None = None,
    external_id: str | None = None,
    meta: dict[str, Any] | None = None,
    party_id: uuid.UUID | None = None,
) -> ReviewItem:
    """Put an unmatched inbound message in the queue. ``party_id`` is a suggestion only."""
    item = ReviewItem(
        channel=channel,
        sender=sender,
        subject=subject,
        body=body,
        original_body=original_body,
        external_id=external_id,
        reason=reason,
        meta=meta or {},
        party_id=party_id,
    )
    session.add(item)
    await session.flush()
    return item


async def first_receipt(session: AsyncSession, source: str, external_id: str) -> bool:
    """Record that the provider event ``external_id`` of ``source`` was applied; False when
    it was before (a repeated webhook). Safe under concurrency: the insert is the check."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    result = await session.exec(
        insert(InboundReceipt)
        .values(source=source, external_id=external_id[:300])
        .on_conflict_do_nothing(index_elements=["source", "external_id"])
    )
    return bool(result.rowcount)
