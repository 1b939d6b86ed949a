"""Reading a case's thread: its messages in the order of the case's log, as the APIs show
them. The case thread and the counter desk's timeline both read it from here."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.messages.schemas import AttachmentOut, MessageOut
from hub.models import Case, CaseEvent, Document, Message


async def read_thread(
    session: AsyncSession, case: Case, *, staff_view: bool, original: bool = False
) -> list[MessageOut]:
    """The case's messages in the order of the case's log, with their attachments.

    Internal notes and channel details are included only for the ``staff_view``; the body as
    it arrived only when ``original`` is asked as well.
    """
    query = select(Message).where(Message.case_id == case.id)
    if not staff_view:
        query = query.where(Message.direction != "internal")
    messages = list((await session.exec(query)).all())
    if not messages:
        return []
    events = (
        await session.exec(
            select(CaseEvent).where(
                CaseEvent.case_id == case.id, col(CaseEvent.kind).in_(("message", "note"))
            )
        )
    ).all()
    seq_of = {e.payload.get("message_id"): e.seq for e in events}
    documents = (
        await session.exec(
            select(Document)
            .where(col(Document.message_id).in_([m.id for m in messages]))
            .order_by(col(Document.created_at))
        )
    ).all()
    attachments: dict[uuid.UUID | None, list[AttachmentOut]] = {}
    for document in documents:
        attachments.setdefault(document.message_id, []).append(
            AttachmentOut(
                id=document.id,
                filename=document.filename,
                content_type=document.content_type,
                size=document.size,
            )
        )

    def position(message: Message) -> tuple[bool, int, dt.datetime]:
        seq = seq_of.get(str(message.id))
        return seq is None, seq or 0, message.created_at

    return [
        message_out(
            message,
            seq=seq_of.get(str(message.id)),
            attachments=attachments.get(message.id, []),
            staff_view=staff_view,
            original=original,
        )
        for message in sorted(messages, key=position)
    ]


def message_out(
    message: Message,
    *,
    seq: int | None,
    attachments: list[AttachmentOut],
    staff_view: bool,
    original: bool,
) -> MessageOut:
    return MessageOut(
        id=message.id,
        seq=seq,
        channel=message.channel,
        direction=message.direction,
        author_kind=message.author_kind,
        author_name=message.author_name,
        subject=message.subject,
        body=message.body,
        original_body=(message.original_body or message.body) if staff_view and original else None,
        delivery_status=message.delivery_status,
        identified_by=message.identified_by,
        meta=message.meta if staff_view else None,
        attachments=attachments,
        created_at=message.created_at,
    )


async def event_seq(session: AsyncSession, message: Message) -> int | None:
    """The sequence number of the event a message just posted in this transaction got."""
    events = await session.exec(
        select(CaseEvent)
        .where(CaseEvent.case_id == message.case_id, col(CaseEvent.kind).in_(("message", "note")))
        .order_by(col(CaseEvent.seq).desc())
        .limit(5)
    )
    return next((e.seq for e in events if e.payload.get("message_id") == str(message.id)), None)


async def posted_message_out(
    session: AsyncSession, message: Message, *, staff_view: bool
) -> MessageOut:
    """A message just posted in this transaction, as the answer to the request that posted
    it: with the seq of its event and, for staff, its channel details."""
    return message_out(
        message,
        seq=await event_seq(session, message),
        attachments=[],
        staff_view=staff_view,
        original=False,
    )
