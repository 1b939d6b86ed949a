"""Messages on a case's thread, whatever channel they came or go by.

Every contact — a chat line, a mail, a text, a desk visit, a letter — is a :class:`Message`
on the case and a ``message`` event in its log, in the same transaction. Replies go out on the
channel the citizen last wrote on unless staff choose another; a notice goes by the party's
preference; when an address is missing (or a delivery bounces, see ``hub.delivery.worker``)
the next channel of email → SMS → letter takes over, and that is recorded on the case.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.delivery.service import enqueue
from hub.errors import InvalidInput
from hub.events.fanout import Broker
from hub.events.service import Actor, Audience, append_event
from hub.messages.segments import check_text
from hub.models import Agency, Case, Conversation, DigitalAddress, Message, Party
from hub.webhooks.service import message_received

Direction = Literal["inbound", "outbound", "internal"]

# Channels the hub can send a message out on by itself, in the order of fallback.
FALLBACK_ORDER = ("email", "sms", "letter")
# Channels a citizen can write on.
INBOUND_CHANNELS = ("webchat", "email", "sms", "counter", "portal", "letter")


@dataclass(frozen=True)
class Route:
    """Where a message to a party goes: a channel and the address on it."""

    channel: str
    recipient: str


async def post_message(
    session: AsyncSession,
    *,
    case: Case,
    channel: str,
    direction: Direction,
    author: Actor,
    body: str,
    identified_by: str | None = None,
    subject: str | None = None,
    original_body: str | None = None,
    external_id: str | None = None,
    conversation_id: uuid.UUID | None = None,
    meta: dict[str, Any] | None = None,
    delivery_status: str | None = None,
    broker: Broker | None = None,
) -> Message:
    """Store a message on the case and append its ``message`` event (``note`` for internal
    ones, which only staff see). Nothing is published before the transaction commits.

    How the sender was identified is kept on every contact: an inbound message without
    ``identified_by`` is a programming error.
    """
    if direction == "inbound" and not identified_by:
        raise ValueError("an inbound message must say how its sender was identified")
    message = Message(
        case_id=case.id,
        party_id=case.party_id,
        channel=channel,
        direction=direction,
        author_kind=author.kind,
        author_id=author.id,
        author_name=author.name,
        subject=subject,
        body=body,
        original_body=original_body,
        external_id=external_id,
        conversation_id=conversation_id,
        identified_by=identified_by,
        meta=meta or {},
        delivery_status=delivery_status,
    )
    audience: Audience = "staff" if direction == "internal" else "citizen"
    # The message goes in with its event: one statement on PostgreSQL.
    await append_event(
        session,
        case_id=case.id,
        kind="note" if direction == "internal" else "message",
        actor=author,
        payload=message_payload(message),
        audience=audience,
        broker=broker,
        along=message,
    )
    if direction == "inbound":
        await message_received(session, case, message)  # the agency's webhook, if any
    return message


def message_payload(message: Message) -> dict[str, Any]:
    """What a ``message`` event carries: enough to show the line without another read."""
    payload: dict[str, Any] = {
        "message_id": str(message.id),
        "channel": message.channel,
        "direction": message.direction,
        "author_kind": message.author_kind,
        "author_name": message.author_name,
        "body": message.body,
        # Kept as "text" too, so notes read the same as the notes posted before messages.
        "text": message.body,
    }
    if message.subject:
        payload["subject"] = message.subject
    if message.identified_by:
        payload["identified_by"] = message.identified_by
    if message.conversation_id:
        payload["conversation_id"] = str(message.conversation_id)
    return payload


async def last_citizen_channel(session: AsyncSession, case_id: uuid.UUID) -> str | None:
    """The channel of the citizen's latest message on the case."""
    query = (
        select(Message.channel)
        .where(Message.case_id == case_id, Message.direction == "inbound")
        .order_by(col(Message.created_at).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


async def mark_case_read(session: AsyncSession, case_id: uuid.UUID, *, now: dt.datetime) -> int:
    """The citizen has seen the case's thread: every message to them not read before is read
    now (the first time counts); how many."""
    statement = (
        sa.update(Message)
        .where(
            col(Message.case_id) == case_id,
            col(Message.direction) == "outbound",
            col(Message.read_at).is_(None),
        )
        .values(read_at=now)
    )
    result = await session.exec(statement)
    count: int = result.rowcount
    return count


async def messages_to_party(
    session: AsyncSession, party_id: uuid.UUID, *, limit: int = 100
) -> list[tuple[Message, Case]]:
    """The latest messages staff sent the party on their cases, newest first, each with its
    case (internal notes are never among them)."""
    query = (
        select(Message, Case)
        .join(Case, col(Case.id) == col(Message.case_id))
        .where(col(Case.party_id) == party_id, col(Message.direction) == "outbound")
        .order_by(col(Message.created_at).desc())
        .limit(limit)
    )
    return [(message, case) for message, case in (await session.exec(query)).all()]


async def address_for(session: AsyncSession, party: Party, channel: str) -> str | None:
    """The party's usable address on ``channel``: a verified mail address, a verified phone
    number that has not opted out of texts, or the postal address for letters."""
    if channel == "letter":
        return party.postal_address
    kind = {"email": "email", "sms": "phone"}.get(channel)
    if kind is None:
        return None
    query = (
        select(DigitalAddress)
        .where(
            DigitalAddress.party_id == party.id,
            DigitalAddress.kind == kind,
            col(DigitalAddress.verified_at).is_not(None),
            col(DigitalAddress.opted_out_at).is_(None),
        )
        .order_by(col(DigitalAddress.created_at))
        .limit(1)
    )
    found = (await session.exec(query)).first()
    return found.value if found else None


def channel_order(needs: Sequence[str], preferred: str | None) -> tuple[str, ...]:
    """The channels to try for a party with ``needs``, in order: ``preferred`` (if the hub can
    send on it), then email → SMS → letter; letters only for one who asked for no digital
    contact."""
    if "no_digital_contact" in needs:
        return ("letter",)
    first = (preferred,) if preferred in FALLBACK_ORDER else ()
    return first + tuple(c for c in FALLBACK_ORDER if c != preferred)


async def route(
    session: AsyncSession,
    party: Party,
    preferred: str | None,
    *,
    tried: tuple[str, ...] = (),
) -> Route | None:
    """The first channel with a usable address: ``preferred`` (if the hub can send on it),
    then email → SMS → letter, skipping channels already ``tried``. A party who asked for
    no digital contact gets letters only."""
    for channel in channel_order(party.needs, preferred):
        if channel in tried:
            continue
        recipient = await address_for(session, party, channel)
        if recipient:
            return Route(channel, recipient)
    return None


async def delivery_context(session: AsyncSession, case: Case, party: Party) -> dict[str, Any]:
    """What outbound templates may show about the case (see ``hub.ports.Outbound``)."""
    agency = await session.get(Agency, case.agency_id)
    return case_context(case, agency.name if agency else case.agency_id, party.name)


def case_context(case: Case, agency_name: str, party_name: str) -> dict[str, Any]:
    """See :func:`delivery_context`, with the agency's name already known."""
    return {
        "case_reference": case.reference,
        "case_title": case.title,
        "agency_id": case.agency_id,
        "agency_name": agency_name,
        "party_name": party_name,
        "case_path": f"/cases/{case.id}",
    }


async def send_to_party(
    session: AsyncSession,
    *,
    case: Case,
    party: Party,
    target: Route,
    body: str,
    subject: str,
    template: str,
    message: Message | None = None,
    tried: tuple[str, ...] = (),
    extra_context: dict[str, Any] | None = None,
) -> None:
    """Put one outbound delivery in the outbox (sent once the transaction commits)."""
    context = await delivery_context(session, case, party)
    context["tried"] = [*tried, target.channel]
    context.update(extra_context or {})
    await enqueue(
        session,
        channel=target.channel,
        recipient=target.recipient,
        template=template,
        body=body,
        subject=subject,
        language=party.preferred_language,
        party_id=party.id,
        case_id=case.id,
        message_id=message.id if message else None,
        context=context,
    )


async def reply_channel(
    session: AsyncSession, case: Case, *, broker: Broker | None
) -> tuple[str, Conversation | None]:
    """Where a staff reply goes when staff do not choose: the chat while the citizen is in
    it; once they have left, the channel they asked replies on, else the one they prefer,
    else email (``reply`` falls back from there); otherwise the channel the citizen last
    wrote on."""
    conversation = (
        await session.exec(
            select(Conversation)
            .where(Conversation.case_id == case.id)
            .order_by(col(Conversation.created_at).desc())
            .limit(1)
        )
    ).first()
    last = await last_citizen_channel(session, case.id)
    if last == "webchat" and conversation is not None:
        online = broker is not None and await broker.citizen_online(case.id)
        if online and conversation.status != "closed":
            return "webchat", conversation
        if conversation.reply_channel in FALLBACK_ORDER:
            return conversation.reply_channel, conversation
        party = await session.get(Party, case.party_id)
        preferred = party.preferred_channel if party else None
        return (preferred if preferred in FALLBACK_ORDER else "email"), conversation
    return last or "portal", conversation


async def reply(
    session: AsyncSession,
    *,
    case: Case,
    author: Actor,
    body: str,
    channel: str | None = None,
    identified_by: str | None = None,
    broker: Broker | None = None,
) -> Message:
    """A reply by staff to the citizen on the case's thread.

    The reply is always on the thread (the portal and the chat show it). When the chosen or
    derived channel is email, SMS or letter it also goes out through the outbox; when that
    channel has no usable address, the next one takes over and the switch is recorded.
    """
    if not body.strip():
        raise InvalidInput("A reply needs text.")
    party = await session.get(Party, case.party_id)
    assert party is not None
    conversation: Conversation | None = None
    if channel is None:
        channel, conversation = await reply_channel(session, case, broker=broker)
    if channel not in (*FALLBACK_ORDER, "webchat", "portal"):
        raise InvalidInput(f"Cannot reply on channel '{channel}'.")
    target: Route | None = None
    if channel in FALLBACK_ORDER:
        target = await route(session, party, channel)
        if target is None:
            channel = "portal"
    if target is not None and target.channel == "sms":
        check_text(body)  # refused now, while staff can still shorten it
    shown_channel = target.channel if target else channel
    message = await post_message(
        session,
        case=case,
        channel=shown_channel,
        direction="outbound",
        author=author,
        body=body,
        identified_by=identified_by,
        conversation_id=conversation.id if conversation else None,
        delivery_status="pending" if target else "delivered",
        broker=broker,
    )
    if target is not None:
        if target.channel != channel:
            await record_fallback(
                session,
                case=case,
                from_channel=channel,
                to=target,
                reason="no_address",
                broker=broker,
            )
        context: dict[str, Any] = {"author_name": author.name}
        if target.channel == "email":
            # Threads our reply under the citizen's last mail in their mail client.
            context["in_reply_to"] = await last_inbound_mail_id(session, case.id)
        await send_to_party(
            session,
            case=case,
            party=party,
            target=target,
            body=body,
            subject=f"{case.title} — {case.reference}",
            template="reply",
            message=message,
            extra_context=context,
        )
    return message


async def last_inbound_mail_id(session: AsyncSession, case_id: uuid.UUID) -> str | None:
    """The Message-ID of the citizen's latest mail on the case."""
    query = (
        select(Message.external_id)
        .where(
            Message.case_id == case_id, Message.channel == "email", Message.direction == "inbound"
        )
        .order_by(col(Message.created_at).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


async def record_fallback(
    session: AsyncSession,
    *,
    case: Case,
    from_channel: str,
    to: Route | None,
    reason: str,
    broker: Broker | None,
) -> None:
    """Note on the case that a message went (or could not go) on another channel."""
    await append_event(
        session,
        case_id=case.id,
        kind="channel_fallback",
        actor=Actor.system(),
        payload={"from": from_channel, "to": to.channel if to else None, "reason": reason},
        audience="staff",
        broker=broker,
    )
