"""Messages on a case's thread: every contact on every channel, in order; staff replies on
a chosen channel and internal notes; citizen portal messages."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.access.service import Viewer, case_for_viewer
from hub.auth.dependencies import CurrentViewer
from hub.cases.service import record_case_access
from hub.dependencies import BrokerDep, CatalogDep, SessionDep
from hub.errors import Forbidden, InvalidInput
from hub.events.fanout import Broker
from hub.messages.schemas import (
    MAX_MESSAGE_CHARS,
    MAX_SUBJECT_CHARS,
    MessageIn,
    MessageOut,
    PostedMessageOut,
    checked_line,
    checked_text,
)
from hub.messages.service import post_message, reply
from hub.messages.thread import posted_message_out, read_thread
from hub.models import Case, Message

router = APIRouter(prefix="/api", tags=["messages"])


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
    await record_case_access(session, viewer, case, catalog, action="read", data="messages")
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
        checked_line(body.subject, what="subject", limit=MAX_SUBJECT_CHARS)
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
    await record_case_access(session, viewer, case, catalog, action="change", data="messages")
    staff_view = viewer.kind != "citizen"
    out = await posted_message_out(session, message, staff_view=staff_view)
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
