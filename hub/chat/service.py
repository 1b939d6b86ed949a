"""Web chat: conversations on cases, the staff queue, pick-up, hand-over, and attaching a chat
that started without a case to the case it belongs to.

Every chat line is a :class:`~hub.models.Message` on the case through
:func:`hub.messages.service.post_message` (a staff line through ``reply``, so it goes by
email or SMS when the citizen has left and asked for that). What the citizen and staff are
told — picked up by whom, handed over, closed, outside opening hours — is an event in the
case's log, so a client that reconnects reads it again.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import bindparam
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from hub.access.service import Viewer, agency_takes_part, case_for_viewer
from hub.cases.service import act_on_case, open_case, record_case_access
from hub.chat.hours import Opening, closed_notice, opening
from hub.clock import local_today
from hub.db import after_commit, utcnow
from hub.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.events.fanout import Broker, Signal
from hub.events.service import Actor, Audience, append_event
from hub.messages.schemas import checked_text
from hub.messages.service import Direction, address_for, post_message, reply
from hub.models import (
    Agency,
    Case,
    CaseEvent,
    Conversation,
    Message,
    Party,
    StaffMember,
    Team,
    TeamMembership,
)
from journeys.catalog import Catalog
from journeys.engine import Decide

QUESTION_JOURNEY = "vraag"
OPEN_STATUSES = ("waiting", "active")
REPLY_CHANNELS = ("webchat", "email", "sms")
MAX_REF = 64


@dataclass(frozen=True)
class ChatContext:
    """What chat work needs besides the session: the journeys, the fan-out and the clock."""

    catalog: Catalog
    broker: Broker | None
    timezone: str


@dataclass(frozen=True)
class Posted:
    """A chat line as stored: the message and the sequence number of its event."""

    message: Message
    seq: int
    case_id: uuid.UUID


@dataclass(frozen=True)
class Started:
    conversation: Conversation
    case: Case
    opening: Opening
    reply_options: list[str]
    posted: Posted | None


@dataclass(frozen=True)
class QueueEntry:
    conversation: Conversation
    case: Case
    party_name: str
    waiting_seconds: int
    for_me: bool
    handover_note: str | None


def queue_key(agency_id: str) -> str:
    """Where changes to an agency's chat queue are fanned out (next to the cases' keys)."""
    return f"queue:{agency_id}"


def _queue_changed(
    session: AsyncSession, context: ChatContext, conversation: Conversation, *agencies: str
) -> None:
    """After commit, tell staff watching the agencies' queues that this chat changed; they
    read the queue again. Only ids and the status travel: nothing of the citizen."""
    broker = context.broker
    if broker is None:
        return
    data = {"conversation_id": str(conversation.id), "status": conversation.status}
    signals = [
        Signal(case_id=queue_key(a), kind="queue", sender="", who={}, data=data, audience="staff")
        for a in dict.fromkeys(agencies or (conversation.agency_id,))
    ]

    async def publish() -> None:
        for signal in signals:
            await broker.signal(signal)

    after_commit(session, publish)


def _changed(
    session: AsyncSession, context: ChatContext, conversation: Conversation, *agencies: str
) -> None:
    """Store a change to the conversation and tell the agencies' queues after commit."""
    session.add(conversation)
    _queue_changed(session, context, conversation, *agencies)


async def _chat_event(
    session: AsyncSession,
    context: ChatContext,
    conversation: Conversation,
    kind: str,
    actor: Actor,
    *,
    case_id: uuid.UUID | None = None,
    audience: Audience = "citizen",
    **details: Any,
) -> CaseEvent:
    """Append an event about the chat to its case's log (or ``case_id``'s), published after
    commit; the payload names the conversation."""
    return await append_event(
        session,
        case_id=case_id or conversation.case_id,
        kind=kind,
        actor=actor,
        payload={"conversation_id": str(conversation.id), **details},
        audience=audience,
        broker=context.broker,
    )


async def log_case_access(
    session: AsyncSession, context: ChatContext, viewer: Viewer, case: Case, action: str, data: str
) -> None:
    """Write the access log line for staff (or a representative) reading or changing the
    case's chat, under the journey's processing activity."""
    await record_case_access(session, viewer, case, context.catalog, action=action, data=data)


# --- reading ---------------------------------------------------------------------------------


async def latest_open_conversation(
    session: AsyncSession, case_id: uuid.UUID
) -> Conversation | None:
    query = (
        select(Conversation)
        .where(Conversation.case_id == case_id, col(Conversation.status).in_(OPEN_STATUSES))
        .order_by(col(Conversation.created_at).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


async def conversation_for_viewer(
    session: AsyncSession, viewer: Viewer, conversation_id: uuid.UUID, *, for_update: bool = False
) -> tuple[Conversation, Case, bool]:
    """The conversation, its case, and whether the viewer represents the party — if the
    viewer may see the case; the same NotFound as for a conversation that does not exist."""
    query = select(Conversation).where(Conversation.id == conversation_id)
    if for_update:
        query = query.with_for_update()
    conversation = (await session.exec(query)).first()
    if conversation is None:
        raise NotFound("No such chat.")
    try:
        case, representing = await case_for_viewer(session, viewer, conversation.case_id)
    except NotFound:
        raise NotFound("No such chat.") from None
    return conversation, case, representing


async def reply_options(session: AsyncSession, party: Party) -> list[str]:
    """The channels other than the chat a reply could go on: those with a verified address."""
    return [c for c in ("email", "sms") if await address_for(session, party, c)]


async def _agency(session: AsyncSession, agency_id: str) -> Agency:
    agency = await session.get(Agency, agency_id)
    if agency is None:
        raise InvalidInput(f"There is no agency '{agency_id}'.")
    return agency


def _seq_of_last_append(case: Case) -> int:
    # The append's UPDATE … RETURNING refreshes the loaded case row in the session, and the
    # row is locked until commit: its last_seq is the number of the event just appended.
    return case.last_seq


# --- starting --------------------------------------------------------------------------------


async def start_chat(
    session: AsyncSession,
    context: ChatContext,
    *,
    viewer: Viewer,
    case_id: uuid.UUID | None = None,
    agency_id: str | None = None,
    text: str | None = None,
    ref: str | None = None,
    now: dt.datetime | None = None,
) -> Started:
    """Start (or continue) a chat: on one of the viewer's cases (or one they represent someone
    in), or — without a case — on a new ``vraag`` case at ``agency_id``, so the chat becomes a
    case. A case with an open chat continues that chat. Outside the agency's opening hours the
    citizen is told when to expect an answer and which other channels could carry it."""
    if viewer.kind != "citizen" or viewer.party_id is None:
        raise Forbidden("Only citizens start chats.")
    if case_id is not None:
        case, representing = await case_for_viewer(session, viewer, case_id, for_update=True)
        if case.status == "closed":
            raise Conflict("This case is closed; start a new chat without a case instead.")
    else:
        if not agency_id:
            raise InvalidInput("Say which agency the question is for (agency_id), or a case.")
        await _agency(session, agency_id)
        party = await session.get(Party, viewer.party_id)
        assert party is not None
        case = await open_case(
            session,
            catalog=context.catalog,
            journey_id=QUESTION_JOURNEY,
            party=party,
            actor=viewer.actor(),
            channel="webchat",
            broker=context.broker,
            timezone=context.timezone,
            agency_id=agency_id,
        )
        representing = False
    conversation = await latest_open_conversation(session, case.id)
    party = await session.get(Party, case.party_id)
    assert party is not None
    agency = await _agency(session, (conversation.agency_id if conversation else case.agency_id))
    state = opening(agency.opening_hours, now or utcnow(), context.timezone)
    options = await reply_options(session, party)
    if conversation is None:
        conversation = Conversation(
            case_id=case.id, party_id=case.party_id, agency_id=case.agency_id
        )
        session.add(conversation)
        await session.flush()
        await _chat_event(
            session,
            context,
            conversation,
            "chat_started",
            viewer.actor(representing=representing),
            agency_id=agency.id,
            agency_name=agency.name,
            open=state.open,
        )
        if not state.open:
            await _chat_event(
                session,
                context,
                conversation,
                "chat_outside_hours",
                Actor.system(),
                next_opening=state.next_opening.isoformat() if state.next_opening else None,
                reply_channels=options,
                text=closed_notice(state.next_opening, options, party.preferred_language),
            )
        _queue_changed(session, context, conversation)
    posted = None
    if text is not None and text.strip():
        text = checked_text(text, what="chat line", limit=10_000)
        external_id = _client_ref(viewer, ref)
        _, posted = await _thread(session, case.id, external_id)
        if posted is None:
            posted = await _citizen_line(
                session, context, viewer=viewer, case=case, representing=representing,
                conversation=conversation, body=text, external_id=external_id,
            )  # fmt: skip
    return Started(conversation, case, state, options, posted)


# --- chat lines ------------------------------------------------------------------------------


def _client_ref(viewer: Viewer, ref: str | None) -> str | None:
    if ref is None:
        return None
    if not ref or len(ref) > MAX_REF:
        raise InvalidInput(f"A ref is 1 to {MAX_REF} characters.")
    return f"webchat:{viewer.kind}:{viewer.id}:{ref}"


def _thread_statement() -> Select[Conversation, Message]:
    """The case's open chat (the latest) and the line already stored under a client ``ref``,
    in one query; built once, as it runs for every chat line."""
    latest = aliased(Conversation)
    open_chat = (
        select(latest.id)
        .where(latest.case_id == Case.id, col(latest.status).in_(OPEN_STATUSES))
        .order_by(col(latest.created_at).desc())
        .limit(1)
        .correlate(Case)
        .scalar_subquery()
    )
    return (
        select(Conversation, Message)
        .select_from(Case)
        .outerjoin(Conversation, col(Conversation.id) == open_chat)
        # By the ref alone, so the ref's own index is used even on a case of many lines; a
        # ref the sender also used on another case comes along and is skipped below.
        .outerjoin(Message, col(Message.external_id) == bindparam("external_id"))
        .where(col(Case.id) == bindparam("case_id"))
    )


_THREAD = _thread_statement()


async def _thread(
    session: AsyncSession, case_id: uuid.UUID, external_id: str | None
) -> tuple[Conversation | None, Posted | None]:
    """The case's open chat, and the line stored before under ``external_id`` (a resend)."""
    params = {"case_id": case_id, "external_id": external_id}
    rows = (await session.exec(_THREAD, params=params)).all()
    conversation = rows[0][0] if rows else None
    found = next((m for _, m in rows if m is not None and m.case_id == case_id), None)
    if found is None:
        return conversation, None
    seq = (
        await session.exec(
            select(CaseEvent.seq).where(
                CaseEvent.case_id == case_id,
                col(CaseEvent.payload)["message_id"].as_string() == str(found.id),
            )
        )
    ).first()
    return conversation, Posted(found, seq or 0, case_id)


async def _citizen_line(
    session: AsyncSession,
    context: ChatContext,
    *,
    viewer: Viewer,
    case: Case,
    representing: bool,
    conversation: Conversation,
    body: str,
    external_id: str | None,
) -> Posted:
    message = await post_message(
        session,
        case=case,
        channel="webchat",
        direction="inbound",
        author=viewer.actor(representing=representing),
        body=body,
        identified_by=viewer.identified_by,
        external_id=external_id,
        conversation_id=conversation.id,
        broker=context.broker,
    )
    return Posted(message, _seq_of_last_append(case), case.id)


async def say(
    session: AsyncSession,
    context: ChatContext,
    *,
    viewer: Viewer,
    case_id: uuid.UUID,
    body: str,
    ref: str | None = None,
    internal: bool = False,
) -> Posted:
    """One chat line on the case, stored (not yet committed) with its event.

    A citizen's line starts a chat when the case has none open. A staff line is a reply to
    the citizen (by chat while they are in it, else the way the chat asked), or with
    ``internal`` a note only staff see. A ``ref`` already used by the same sender on the case
    stores nothing new and returns the line stored with it.
    """
    body = body.strip()
    if not body:
        raise InvalidInput("A chat line needs text.")
    if len(body) > 10_000:
        raise InvalidInput("A chat line is at most 10,000 characters.")
    body = checked_text(body, what="chat line", limit=10_000)
    if viewer.kind not in ("citizen", "staff"):
        raise Forbidden("Only citizens and staff chat.")
    if internal and viewer.kind != "staff":
        raise Forbidden("Only staff write internal notes.")
    external_id = _client_ref(viewer, ref)
    case, representing = await case_for_viewer(session, viewer, case_id, for_update=True)
    conversation, done = await _thread(session, case.id, external_id)
    if done is not None:
        return done
    if viewer.kind == "citizen":
        if conversation is None:
            started = await start_chat(session, context, viewer=viewer, case_id=case.id)
            conversation = started.conversation
        return await _citizen_line(
            session, context, viewer=viewer, case=case, representing=representing,
            conversation=conversation, body=body, external_id=external_id,
        )  # fmt: skip
    if internal:
        message = await _note(
            session, context, viewer, case, conversation, body, external_id=external_id
        )
    else:
        message = await reply(
            session, case=case, author=viewer.actor(), body=body, broker=context.broker
        )
        if external_id is not None:
            message.external_id = external_id
            session.add(message)
    await log_case_access(session, context, viewer, case, "change", "chat")
    return Posted(message, _seq_of_last_append(case), case.id)


async def _note(
    session: AsyncSession,
    context: ChatContext,
    viewer: Viewer,
    case: Case,
    conversation: Conversation | None,
    body: str,
    *,
    external_id: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Message:
    """An internal note by staff on the case (in the chat, when there is one): only staff
    see it."""
    return await post_message(
        session,
        case=case,
        channel="webchat",
        direction="internal",
        author=viewer.actor(),
        body=body,
        external_id=external_id,
        conversation_id=conversation.id if conversation else None,
        meta=meta,
        broker=context.broker,
    )


# --- the staff side --------------------------------------------------------------------------


async def _team_ids(session: AsyncSession, staff_id: uuid.UUID) -> set[int]:
    query = select(TeamMembership.team_id).where(TeamMembership.staff_id == staff_id)
    return set((await session.exec(query)).all())


def _staff_id(viewer: Viewer) -> uuid.UUID:
    if viewer.kind != "staff" or viewer.agency_id is None:
        raise Forbidden("Only staff can do this.")
    return uuid.UUID(viewer.id)


async def _last_handover_note(session: AsyncSession, conversation: Conversation) -> str | None:
    query = (
        select(Message.body)
        .where(
            Message.conversation_id == conversation.id,
            Message.direction == "internal",
            col(Message.meta)["handover"].as_boolean() == True,  # noqa: E712 - SQL expression
        )
        .order_by(col(Message.created_at).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


async def queue(
    session: AsyncSession, context: ChatContext, *, viewer: Viewer, now: dt.datetime | None = None
) -> list[QueueEntry]:
    """The waiting chats this staff member may pick up, longest waiting first: their
    agency's, narrowed to their teams when handed to a team, and those handed to them."""
    staff_id = _staff_id(viewer)
    teams = await _team_ids(session, staff_id)
    rows = (
        await session.exec(
            select(Conversation, Case, Party)
            .join(Case, col(Case.id) == col(Conversation.case_id))
            .join(Party, col(Party.id) == col(Conversation.party_id))
            .where(Conversation.agency_id == viewer.agency_id, Conversation.status == "waiting")
            .order_by(col(Conversation.waiting_since))
        )
    ).all()
    now = now or utcnow()
    entries = []
    for conversation, case, party in rows:
        if conversation.staff_id is not None and conversation.staff_id != staff_id:
            continue
        if conversation.team_id is not None and conversation.team_id not in teams:
            continue
        await log_case_access(session, context, viewer, case, "read", "chat_queue")
        entries.append(
            QueueEntry(
                conversation=conversation,
                case=case,
                party_name=party.name,
                waiting_seconds=max(0, int((now - conversation.waiting_since).total_seconds())),
                for_me=conversation.staff_id == staff_id,
                handover_note=await _last_handover_note(session, conversation),
            )
        )
    return entries


async def pick_up(
    session: AsyncSession, context: ChatContext, *, viewer: Viewer, conversation_id: uuid.UUID
) -> tuple[Conversation, Case]:
    """Take a waiting chat from the queue. The citizen is told the staff member's name and
    agency (a ``chat_picked_up`` event); someone else's pick-up first → 409."""
    staff_id = _staff_id(viewer)
    conversation, case, _ = await conversation_for_viewer(
        session, viewer, conversation_id, for_update=True
    )
    if conversation.agency_id != viewer.agency_id:
        raise NotFound("No such chat in your queue.")
    if conversation.status != "waiting":
        raise Conflict(f"This chat is {conversation.status}, not waiting.")
    if conversation.staff_id not in (None, staff_id):
        raise Conflict("This chat was handed to a colleague.")
    if conversation.team_id is not None and conversation.team_id not in await _team_ids(
        session, staff_id
    ):
        raise Conflict("This chat was handed to a team you are not in.")
    agency = await _agency(session, conversation.agency_id)
    conversation.status = "active"
    conversation.staff_id = staff_id
    conversation.picked_up_at = utcnow()
    _changed(session, context, conversation)
    if case.owner_id is None and case.agency_id == viewer.agency_id:
        case.owner_id = staff_id
        session.add(case)
    await _chat_event(
        session,
        context,
        conversation,
        "chat_picked_up",
        viewer.actor(),
        staff_name=viewer.name,
        agency_id=agency.id,
        agency_name=agency.name,
    )
    await log_case_access(session, context, viewer, case, "read", "chat")
    return conversation, case


async def hand_over(
    session: AsyncSession,
    context: ChatContext,
    *,
    viewer: Viewer,
    conversation_id: uuid.UUID,
    note: str,
    to_staff: uuid.UUID | None = None,
    to_team: int | None = None,
    to_agency: str | None = None,
) -> Conversation:
    """Hand an open chat to a colleague, a team, or an agency taking part in the case, with a
    note only staff see. It waits again in the receiver's queue; they see the whole thread."""
    _staff_id(viewer)
    if sum(x is not None for x in (to_staff, to_team, to_agency)) != 1:
        raise InvalidInput("Hand over to exactly one of a colleague, a team or an agency.")
    if not note.strip():
        raise InvalidInput("Say in a note what the next person should know.")
    note = checked_text(note, what="note", limit=4_000)
    conversation, case, _ = await conversation_for_viewer(
        session, viewer, conversation_id, for_update=True
    )
    if conversation.agency_id != viewer.agency_id:
        raise Forbidden("Only staff of the agency that has the chat can hand it over.")
    if conversation.status not in OPEN_STATUSES:
        raise Conflict("This chat is closed.")
    target_name: str
    team_id: int | None = None
    staff_id: uuid.UUID | None = None
    if to_staff is not None:
        colleague = await session.get(StaffMember, to_staff)
        if colleague is None or not colleague.active:
            raise InvalidInput("There is no such colleague.")
        agency_id, staff_id, target_name = colleague.agency_id, colleague.id, colleague.display_name
    elif to_team is not None:
        team = await session.get(Team, to_team)
        if team is None:
            raise InvalidInput("There is no such team.")
        agency_id, team_id, target_name = team.agency_id, team.id, team.name
    else:
        assert to_agency is not None
        agency_id = to_agency
        target_name = (await _agency(session, to_agency)).name
    if not await agency_takes_part(session, case, agency_id):
        raise InvalidInput(
            f"Agency '{agency_id}' does not take part in this case; hand over within the "
            "agencies of the case."
        )
    agency = await _agency(session, agency_id)
    note_message = await _note(
        session, context, viewer, case, conversation, note.strip(), meta={"handover": True}
    )
    previous_agency = conversation.agency_id
    conversation.agency_id = agency_id
    conversation.team_id = team_id
    conversation.staff_id = staff_id
    conversation.status = "waiting"
    conversation.waiting_since = utcnow()
    _changed(session, context, conversation, previous_agency, agency_id)
    await _chat_event(
        session,
        context,
        conversation,
        "chat_handed_over",
        viewer.actor(),
        audience="staff",
        to_kind="staff" if to_staff else "team" if to_team else "agency",
        to_id=str(to_staff or to_team or to_agency),
        to_name=target_name,
        agency_id=agency.id,
        note_message_id=str(note_message.id),
    )
    await _chat_event(
        session,
        context,
        conversation,
        "chat_transferred",
        viewer.actor(),
        agency_id=agency.id,
        agency_name=agency.name,
    )
    return conversation


async def close_chat(
    session: AsyncSession, context: ChatContext, *, viewer: Viewer, conversation_id: uuid.UUID
) -> Conversation:
    """End the chat (the citizen, or staff of the agency that has it). The case stays."""
    conversation, _, representing = await conversation_for_viewer(
        session, viewer, conversation_id, for_update=True
    )
    if viewer.kind == "staff" and conversation.agency_id != viewer.agency_id:
        raise Forbidden("Only staff of the agency that has the chat can close it.")
    if viewer.kind == "agency":
        raise Forbidden("Only the citizen or staff close a chat.")
    if conversation.status == "closed":
        return conversation
    conversation.status = "closed"
    conversation.closed_at = utcnow()
    _changed(session, context, conversation)
    await _chat_event(
        session, context, conversation, "chat_closed", viewer.actor(representing=representing)
    )
    return conversation


async def set_reply_channel(
    session: AsyncSession,
    context: ChatContext,
    *,
    viewer: Viewer,
    conversation_id: uuid.UUID,
    channel: str,
) -> Conversation:
    """The citizen asks for replies by email or SMS once they have left the chat (or by chat
    again). Only a channel with a verified address can be chosen."""
    if viewer.kind != "citizen":
        raise Forbidden("The citizen chooses how replies reach them.")
    if channel not in REPLY_CHANNELS:
        raise InvalidInput(f"Replies go by {', '.join(REPLY_CHANNELS)}, not '{channel}'.")
    conversation, case, representing = await conversation_for_viewer(
        session, viewer, conversation_id, for_update=True
    )
    if channel != "webchat":
        party = await session.get(Party, case.party_id)
        assert party is not None
        if await address_for(session, party, channel) is None:
            raise InvalidInput(
                f"There is no verified {'email address' if channel == 'email' else 'phone number'}"
                " to send replies to; add and verify one first."
            )
    conversation.reply_channel = channel
    session.add(conversation)
    await _chat_event(
        session,
        context,
        conversation,
        "chat_reply_channel",
        viewer.actor(representing=representing),
        channel=channel,
    )
    return conversation


async def attach_to_case(
    session: AsyncSession,
    context: ChatContext,
    *,
    viewer: Viewer,
    conversation_id: uuid.UUID,
    target_case_id: uuid.UUID,
) -> tuple[Conversation, Case]:
    """Move a chat that started as a question (a ``vraag`` case) onto an existing case of the
    same party: its lines are posted on the target case in order, the chat continues there,
    and the question case is closed with the result ``attached``."""
    _staff_id(viewer)
    conversation, source, _ = await conversation_for_viewer(
        session, viewer, conversation_id, for_update=True
    )
    if source.journey_id != QUESTION_JOURNEY or source.status == "closed":
        raise Conflict("Only a chat on an open question (vraag) case can be attached.")
    target, _ = await case_for_viewer(session, viewer, target_case_id, for_update=True)
    if target.id == source.id or target.party_id != source.party_id:
        raise InvalidInput("Attach the chat to another case of the same party.")
    if target.status == "closed":
        raise Conflict("The target case is closed.")
    lines = (
        await session.exec(
            select(Message)
            .where(Message.case_id == source.id, Message.conversation_id == conversation.id)
            .order_by(col(Message.created_at))
        )
    ).all()
    for line in lines:
        meta: dict[str, Any] = {
            **line.meta,
            "moved_from_case": str(source.id),
            "moved_from_message": str(line.id),
            "written_at": line.created_at.isoformat(),
        }
        await post_message(
            session,
            case=target,
            channel=line.channel,
            direction=cast(Direction, line.direction),
            author=Actor(kind=line.author_kind, id=line.author_id, name=line.author_name),
            body=line.body,
            identified_by=line.identified_by,
            subject=line.subject,
            original_body=line.original_body,
            conversation_id=conversation.id,
            meta=meta,
            delivery_status=line.delivery_status,
            broker=context.broker,
        )
    conversation.case_id = target.id
    _changed(session, context, conversation)
    await _chat_event(
        session,
        context,
        conversation,
        "chat_moved",
        viewer.actor(),
        case_id=source.id,
        to_case_id=str(target.id),
        to_reference=target.reference,
    )
    await _chat_event(
        session,
        context,
        conversation,
        "chat_attached",
        viewer.actor(),
        from_case_id=str(source.id),
        from_reference=source.reference,
        lines=len(lines),
    )
    await act_on_case(
        session,
        catalog=context.catalog,
        case=source,
        action=Decide(result="attached", on=local_today(context.timezone)),
        actor=viewer.actor(),
        broker=context.broker,
        timezone=context.timezone,
    )
    return conversation, target
