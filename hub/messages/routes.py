"""Messages on a case's thread: every contact on every channel, in order; staff replies on
a chosen channel and internal notes; citizen portal messages."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.access.service import Viewer, case_for_viewer, record_access
from hub.auth.dependencies import CurrentViewer
from hub.cases.service import definition_of
from hub.dependencies import BrokerDep, CatalogDep, SessionDep
from hub.errors import Forbidden, InvalidInput
from hub.events.fanout import Broker
from hub.messages.service import post_message, reply
from hub.models import Case, CaseEvent, Document, Message

router = APIRouter(prefix="/api", tags=["messages"])

MAX_MESSAGE_CHARS = 10_000
MAX_SUBJECT_CHARS = 300
# Where a staff reply may go; the thread (portal) always shows it too.
ReplyChannel = Literal["webchat", "email", "sms", "letter", "portal"]


class AttachmentOut(BaseModel):
    id: uuid.UUID
    filename: str
    content_type: str
    size: int


class MessageOut(BaseModel):
    """One contact on the thread. ``seq`` is the position of its event in the case's log, so
    a client following the case live can place it among the other events."""

    id: uuid.UUID
    seq: int | None
    channel: str
    direction: str
    author_kind: str
    author_name: str | None
    subject: str | None
    body: str
    original_body: str | None = Field(
        None, description="The message as it arrived (staff, with ?original=true)."
    )
    delivery_status: str | None
    identified_by: str | None
    meta: dict[str, Any] | None = Field(None, description="Channel details (staff only).")
    attachments: list[AttachmentOut]
    created_at: dt.datetime


class PostedMessageOut(MessageOut):
    requested_channel: str | None = Field(
        None,
        description="The channel staff asked for; differs from `channel` when the reply "
        "fell back to the next channel for want of an address.",
    )


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(description=f"The text, at most {MAX_MESSAGE_CHARS:,} characters.")
    subject: str | None = Field(None, description=f"At most {MAX_SUBJECT_CHARS} characters.")
    channel: ReplyChannel | None = Field(
        None,
        description="Staff only: where the reply goes. Default: the channel the citizen "
        "last wrote on.",
    )
    internal: bool = Field(False, description="Staff only: a note the citizen never sees.")


def checked_text(text: str, *, what: str, limit: int) -> str:
    """Text as a person typed it, refused clearly when it cannot be a message: empty, too
    long, or with control characters a database cannot store or a screen cannot show."""
    text = text.strip()
    if not text:
        raise InvalidInput(f"The {what} is empty.")
    if len(text) > limit:
        raise InvalidInput(
            f"The {what} has {len(text):,} characters; the most we take is {limit:,}.",
            limit=limit,
        )
    if any(ord(ch) < 32 and ch not in "\n\r\t" for ch in text):
        raise InvalidInput(f"The {what} contains control characters.")
    return text


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


@router.get("/cases/{case_id}/messages")
async def case_messages(
    case_id: uuid.UUID,
    viewer: CurrentViewer,
    session: SessionDep,
    catalog: CatalogDep,
    original: Annotated[
        bool, Query(description="Staff only: add each message's body as it arrived.")
    ] = False,
) -> list[MessageOut]:
    """The case's thread: every message on every channel, in order. Citizens (and their
    representatives) see what was said to and by them; staff also see internal notes."""
    case, _ = await case_for_viewer(session, viewer, case_id)
    staff_view = viewer.kind != "citizen"
    if original and not staff_view:
        raise Forbidden("Only staff can see messages as they arrived.")
    await record_access(
        session,
        viewer,
        party_id=case.party_id,
        action="read",
        data="messages",
        case=case,
        activity_code=definition_of(catalog, case).processing_activity,
    )
    return await read_thread(session, case, staff_view=staff_view, original=original)


@router.post("/cases/{case_id}/messages", status_code=status.HTTP_201_CREATED)
async def add_message(
    case_id: uuid.UUID,
    body: MessageIn,
    viewer: CurrentViewer,
    session: SessionDep,
    catalog: CatalogDep,
    broker: BrokerDep,
) -> PostedMessageOut:
    """Add a message to the thread.

    Staff (or an agency system) reply to the citizen — on ``channel``, or by default the
    channel the citizen last wrote on; email, SMS and letters go out through the outbox, and
    when the party has no address on that channel the next of email → SMS → letter takes
    over (the answer's ``channel`` says where it went) — or write an ``internal`` note.
    A citizen, or their representative, writes on the portal.
    """
    case, representing = await case_for_viewer(session, viewer, case_id, for_update=True)
    text = checked_text(body.body, what="message", limit=MAX_MESSAGE_CHARS)
    subject = (
        checked_text(body.subject, what="subject", limit=MAX_SUBJECT_CHARS)
        if body.subject is not None
        else None
    )
    if viewer.kind == "citizen":
        if body.channel not in (None, "portal") or body.internal:
            raise InvalidInput(
                "A citizen writes on the portal: leave out 'channel' and 'internal'."
            )
        message = await post_message(
            session,
            case=case,
            channel="portal",
            direction="inbound",
            author=viewer.actor(representing=representing),
            body=text,
            subject=subject,
            identified_by=viewer.identified_by,
            broker=broker,
        )
    else:
        message = await _staff_message(
            session, case=case, viewer=viewer, body=body, text=text, subject=subject, broker=broker
        )
    await record_access(
        session,
        viewer,
        party_id=case.party_id,
        action="change",
        data="messages",
        case=case,
        activity_code=definition_of(catalog, case).processing_activity,
    )
    staff_view = viewer.kind != "citizen"
    out = message_out(
        message,
        seq=await event_seq(session, message),
        attachments=[],
        staff_view=staff_view,
        original=False,
    )
    return PostedMessageOut(
        **out.model_dump(), requested_channel=body.channel if staff_view else None
    )


async def _staff_message(
    session: AsyncSession,
    *,
    case: Case,
    viewer: Viewer,
    body: MessageIn,
    text: str,
    subject: str | None,
    broker: Broker,
) -> Message:
    if body.internal:
        if body.channel is not None:
            raise InvalidInput("An internal note goes on no channel: leave out 'channel'.")
        return await post_message(
            session,
            case=case,
            # Where the note was written: the staff console, or an agency's system.
            channel="portal" if viewer.kind == "staff" else "api",
            direction="internal",
            author=viewer.actor(),
            body=text,
            subject=subject,
            identified_by=viewer.identified_by,
            broker=broker,
        )
    if subject is not None:
        raise InvalidInput("A reply takes the case's title as its subject: leave out 'subject'.")
    # How the author was identified is kept on every contact, replies included.
    return await reply(
        session,
        case=case,
        author=viewer.actor(),
        body=text,
        channel=body.channel,
        identified_by=viewer.identified_by,
        broker=broker,
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
