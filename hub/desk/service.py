"""The counter desk: finding the visitor, recording the visit, and saying which channel the
follow-up takes.

"No wrong door": any agency's desk finds the visitor and the list of their cases; what a
case holds is shown only to an agency that may see that case.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal, get_args

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.db import utcnow
from hub.errors import Conflict, InvalidInput
from hub.events.fanout import Broker
from hub.events.service import Actor, append_event
from hub.messages.service import FALLBACK_ORDER, address_for, post_message
from hub.models import Case, CaseEvent, DigitalAddress, Mandate, Message, Party
from hub.parties.service import find_party

# What staff may write down as checked. Knowing a visitor by sight is not an identification.
IdentityDocument = Literal["passport", "id_card", "driving_licence", "residence_permit"]
IDENTITY_DOCUMENTS: tuple[str, ...] = get_args(IdentityDocument)

FOLLOW_UP_EVENT = "follow_up_channel"
FOLLOW_UP_TEXT = {
    "nl": {
        "email": "Wij mailen u zodra er nieuws is over uw zaak.",
        "sms": "Wij sturen u een sms zodra er nieuws is over uw zaak.",
        "letter": "Wij sturen u een brief zodra er nieuws is over uw zaak.",
    },
    "en": {
        "email": "We will email you as soon as there is news about your case.",
        "sms": "We will text you as soon as there is news about your case.",
        "letter": "We will send you a letter as soon as there is news about your case.",
    },
}
MISSING_ADDRESS = {
    "email": "no verified email address",
    "sms": "no verified mobile number that takes texts (none known, not verified, or the "
    "citizen texted STOP)",
    "letter": "no postal address",
}


def normalised_name(name: str) -> str:
    return " ".join(name.split()).casefold()


async def find_parties(
    session: AsyncSession,
    *,
    bsn: str | None = None,
    kvk_number: str | None = None,
    case_reference: str | None = None,
    name: str | None = None,
    date_of_birth: dt.date | None = None,
) -> list[Party]:
    """The parties matching one key: an identifier (BSN or KvK number), a case reference,
    or a name together with a date of birth (case and spacing of the name do not matter)."""
    if bsn is not None or kvk_number is not None:
        party = await find_party(session, bsn=bsn, kvk_number=kvk_number)
        return [party] if party else []
    if case_reference is not None:
        reference = case_reference.strip().upper()
        query = select(Party).join(Case, col(Case.party_id) == col(Party.id))
        return list((await session.exec(query.where(Case.reference == reference))).all())
    if name is None or date_of_birth is None:
        raise InvalidInput("A search by name needs the date of birth as well.")
    # Compared here rather than in SQL: SQLite's lower() leaves letters such as "É" as they are.
    wanted = normalised_name(name)
    born = (await session.exec(select(Party).where(Party.date_of_birth == date_of_birth))).all()
    return [party for party in born if normalised_name(party.name) == wanted]


async def find_visitor(
    session: AsyncSession,
    *,
    bsn: str | None = None,
    kvk_number: str | None = None,
    case_reference: str | None = None,
    name: str | None = None,
    date_of_birth: dt.date | None = None,
) -> Party | None:
    """The one party the key points to; Conflict when a name and date of birth fit several
    (the desk then asks for an identifier)."""
    parties = await find_parties(
        session,
        bsn=bsn,
        kvk_number=kvk_number,
        case_reference=case_reference,
        name=name,
        date_of_birth=date_of_birth,
    )
    if len(parties) > 1:
        raise Conflict(
            "Several people have this name and date of birth: search by BSN or a case reference."
        )
    return parties[0] if parties else None


async def verified_addresses(session: AsyncSession, party_id: uuid.UUID) -> list[DigitalAddress]:
    query = (
        select(DigitalAddress)
        .where(DigitalAddress.party_id == party_id, col(DigitalAddress.verified_at).is_not(None))
        .order_by(col(DigitalAddress.kind), col(DigitalAddress.created_at))
    )
    return list((await session.exec(query)).all())


async def representatives(
    session: AsyncSession, party_id: uuid.UUID
) -> list[tuple[Mandate, Party]]:
    """Who may act for the party now, by which mandate."""
    now = utcnow()
    rows = (
        await session.exec(
            select(Mandate, Party)
            .join(Party, col(Party.id) == col(Mandate.representative_id))
            .where(Mandate.party_id == party_id)
            .order_by(col(Mandate.created_at))
        )
    ).all()
    return [(mandate, party) for mandate, party in rows if mandate.active_at(now)]


async def record_visit(
    session: AsyncSession,
    *,
    case: Case,
    staff: Actor,
    topic: str,
    summary: str | None,
    identity_document: str,
    broker: Broker | None = None,
) -> Message:
    """A visit to the desk, on the case's thread: what was discussed, and the identity
    document the member of staff checked (a visit without one is refused)."""
    if identity_document not in IDENTITY_DOCUMENTS:
        raise InvalidInput(
            "Check an identity document before recording a visit: one of "
            + ", ".join(IDENTITY_DOCUMENTS)
            + ". Knowing the visitor by sight is not enough.",
            allowed=list(IDENTITY_DOCUMENTS),
        )
    return await post_message(
        session,
        case=case,
        channel="counter",
        direction="inbound",
        author=staff,
        subject=topic,
        body=summary or topic,
        identified_by="id_document",
        meta={"document": identity_document, "topic": topic},
        broker=broker,
    )


async def hand_follow_up(
    session: AsyncSession,
    *,
    case: Case,
    channel: str,
    actor: Actor,
    broker: Broker | None = None,
) -> CaseEvent:
    """Record that news on the case will reach the citizen on ``channel`` ("we'll text you
    when it's decided"). Only a channel the party has a usable address on is taken."""
    if channel not in FALLBACK_ORDER:
        raise InvalidInput(
            f"A follow-up goes by {', '.join(FALLBACK_ORDER)}; '{channel}' is not one of them."
        )
    party = await session.get(Party, case.party_id)
    assert party is not None
    if channel != "letter" and "no_digital_contact" in party.needs:
        raise InvalidInput(
            f"{party.name} asked for no digital contact: the follow-up can only go by letter."
        )
    if await address_for(session, party, channel) is None:
        raise InvalidInput(
            f"{party.name} has {MISSING_ADDRESS[channel]}: add one first, or choose another "
            "channel.",
            missing=channel,
        )
    texts = FOLLOW_UP_TEXT["en" if party.preferred_language == "en" else "nl"]
    return await append_event(
        session,
        case_id=case.id,
        kind=FOLLOW_UP_EVENT,
        actor=actor,
        payload={"channel": channel, "text": texts[channel]},
        audience="citizen",
        broker=broker,
    )


async def follow_up_channel(session: AsyncSession, case_id: uuid.UUID) -> str | None:
    """The channel the latest desk follow-up on the case named, if any."""
    query = (
        select(CaseEvent)
        .where(CaseEvent.case_id == case_id, CaseEvent.kind == FOLLOW_UP_EVENT)
        .order_by(col(CaseEvent.seq).desc())
        .limit(1)
    )
    event = (await session.exec(query)).first()
    channel = event.payload.get("channel") if event else None
    return channel if isinstance(channel, str) else None
