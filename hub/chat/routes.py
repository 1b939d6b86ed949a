"""Web chat: conversations, the staff queue, pick-up and hand-over.

Chat lines can be sent here and over the live socket (docs/websocket-protocol.md) alike; the
socket is where they are received live.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.auth.dependencies import CurrentCitizen, CurrentStaff, CurrentViewer
from hub.chat import service
from hub.chat.schemas import (
    AckOut,
    AttachIn,
    ChatLineIn,
    ChatOut,
    ChatStart,
    ChatStarted,
    HandOverIn,
    OpeningOut,
    QueueEntryOut,
    ReplyChannelIn,
)
from hub.dependencies import BrokerDep, CatalogDep, SessionDep, SettingsDep
from hub.errors import Forbidden
from hub.models import Agency, Case, Conversation, StaffMember

router = APIRouter(prefix="/api", tags=["chat"])


def _context(catalog: CatalogDep, broker: BrokerDep, settings: SettingsDep) -> service.ChatContext:
    return service.ChatContext(catalog=catalog, broker=broker, timezone=settings.timezone)


ContextDep = Annotated[service.ChatContext, Depends(_context)]


async def _chat_out(session: AsyncSession, conversation: Conversation) -> ChatOut:
    case = await session.get(Case, conversation.case_id)
    agency = await session.get(Agency, conversation.agency_id)
    staff = await session.get(StaffMember, conversation.staff_id) if conversation.staff_id else None
    assert case is not None
    return ChatOut(
        id=conversation.id,
        case_id=conversation.case_id,
        case_reference=case.reference,
        agency_id=conversation.agency_id,
        agency_name=agency.name if agency else conversation.agency_id,
        status=conversation.status,
        staff_name=staff.display_name if staff else None,
        reply_channel=conversation.reply_channel,
        waiting_since=conversation.waiting_since,
        picked_up_at=conversation.picked_up_at,
        closed_at=conversation.closed_at,
    )


def _ack(posted: service.Posted) -> AckOut:
    return AckOut(case_id=posted.case_id, message_id=posted.message.id, seq=posted.seq)


@router.post("/chats", status_code=status.HTTP_201_CREATED)
async def start_chat(
    body: ChatStart,
    citizen: CurrentCitizen,
    session: SessionDep,
    context: ContextDep,
) -> ChatStarted:
    """Start a chat on a case, or — without one — a question to an agency that becomes a
    case. A case with an open chat continues it. Outside opening hours ``opening`` says when
    to expect an answer and which other channels could carry it (see ``reply-channel``)."""
    started = await service.start_chat(
        session,
        context,
        viewer=citizen,
        case_id=body.case_id,
        agency_id=body.agency_id,
        text=body.text,
        ref=body.ref,
    )
    return ChatStarted(
        chat=await _chat_out(session, started.conversation),
        opening=OpeningOut(
            open=started.opening.open,
            next_opening=started.opening.next_opening,
            reply_options=started.reply_options,
        ),
        message=_ack(started.posted) if started.posted else None,
    )


@router.get("/chats/queue")
async def chat_queue(
    staff: CurrentStaff,
    session: SessionDep,
    context: ContextDep,
) -> list[QueueEntryOut]:
    """Waiting chats you may pick up, longest waiting first, with how long they have waited."""
    entries = await service.queue(session, context, viewer=staff)
    return [
        QueueEntryOut(
            conversation_id=e.conversation.id,
            case_id=e.case.id,
            case_reference=e.case.reference,
            case_title=e.case.title,
            party_name=e.party_name,
            waiting_seconds=e.waiting_seconds,
            waiting_since=e.conversation.waiting_since,
            team_id=e.conversation.team_id,
            for_me=e.for_me,
            handover_note=e.handover_note,
        )
        for e in entries
    ]


@router.get("/chats/{conversation_id}")
async def read_chat(
    conversation_id: uuid.UUID, viewer: CurrentViewer, session: SessionDep
) -> ChatOut:
    """The chat's state: waiting or with whom, for which agency, where replies go."""
    conversation, _, _ = await service.conversation_for_viewer(session, viewer, conversation_id)
    return await _chat_out(session, conversation)


@router.post("/chats/{conversation_id}/pickup")
async def pick_up(
    conversation_id: uuid.UUID,
    staff: CurrentStaff,
    session: SessionDep,
    context: ContextDep,
) -> ChatOut:
    """Take the chat; the citizen is told your name and agency."""
    conversation, _ = await service.pick_up(
        session, context, viewer=staff, conversation_id=conversation_id
    )
    return await _chat_out(session, conversation)


@router.post("/chats/{conversation_id}/handover")
async def hand_over(
    conversation_id: uuid.UUID,
    body: HandOverIn,
    staff: CurrentStaff,
    session: SessionDep,
    context: ContextDep,
) -> ChatOut:
    """Hand the chat to a colleague, a team, or an agency of the case, with a note for them."""
    conversation = await service.hand_over(
        session,
        context,
        viewer=staff,
        conversation_id=conversation_id,
        note=body.note,
        to_staff=body.to_staff_id,
        to_team=body.to_team_id,
        to_agency=body.to_agency_id,
    )
    return await _chat_out(session, conversation)


@router.post("/chats/{conversation_id}/close")
async def close_chat(
    conversation_id: uuid.UUID,
    viewer: CurrentViewer,
    session: SessionDep,
    context: ContextDep,
) -> ChatOut:
    """End the chat (the citizen, or staff of the agency that has it); the case goes on."""
    conversation = await service.close_chat(
        session, context, viewer=viewer, conversation_id=conversation_id
    )
    return await _chat_out(session, conversation)


@router.put("/chats/{conversation_id}/reply-channel")
async def set_reply_channel(
    conversation_id: uuid.UUID,
    body: ReplyChannelIn,
    citizen: CurrentCitizen,
    session: SessionDep,
    context: ContextDep,
) -> ChatOut:
    """How replies reach you once you have left the chat: webchat, email or sms (a verified
    address is needed)."""
    conversation = await service.set_reply_channel(
        session,
        context,
        viewer=citizen,
        conversation_id=conversation_id,
        channel=body.channel,
    )
    return await _chat_out(session, conversation)


@router.post("/chats/{conversation_id}/attach")
async def attach(
    conversation_id: uuid.UUID,
    body: AttachIn,
    staff: CurrentStaff,
    session: SessionDep,
    context: ContextDep,
) -> ChatOut:
    """Move a chat that started as a question onto an existing case of the same party; the
    question case closes as ``attached``."""
    conversation, _ = await service.attach_to_case(
        session,
        context,
        viewer=staff,
        conversation_id=conversation_id,
        target_case_id=body.case_id,
    )
    return await _chat_out(session, conversation)


async def _post_line(
    conversation_id: uuid.UUID,
    body: ChatLineIn,
    viewer: CurrentViewer,
    session: AsyncSession,
    context: service.ChatContext,
    *,
    internal: bool,
) -> AckOut:
    conversation, _, _ = await service.conversation_for_viewer(session, viewer, conversation_id)
    posted = await service.say(
        session,
        context,
        viewer=viewer,
        case_id=conversation.case_id,
        body=body.text,
        ref=body.ref,
        internal=internal,
    )
    return _ack(posted)


@router.post("/chats/{conversation_id}/messages", status_code=status.HTTP_201_CREATED)
async def post_line(
    conversation_id: uuid.UUID,
    body: ChatLineIn,
    viewer: CurrentViewer,
    session: SessionDep,
    context: ContextDep,
) -> AckOut:
    """A chat line (citizen) or a reply (staff), stored before this answers."""
    if viewer.kind == "agency":
        raise Forbidden("Only citizens and staff chat.")
    return await _post_line(conversation_id, body, viewer, session, context, internal=False)


@router.post("/chats/{conversation_id}/notes", status_code=status.HTTP_201_CREATED)
async def post_note(
    conversation_id: uuid.UUID,
    body: ChatLineIn,
    staff: CurrentStaff,
    session: SessionDep,
    context: ContextDep,
) -> AckOut:
    """An internal note on the chat's case: staff see it, live and later; the citizen never."""
    return await _post_line(conversation_id, body, staff, session, context, internal=True)
