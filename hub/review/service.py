"""The review queue: inbound mail and texts that matched no case, kept for staff.

Nothing that arrives is dropped. Staff attach an item to a party and case (it becomes a
message there) or discard it; a sender's address is linked to a party only once verified.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.auth.citizens import normalise_address
from hub.db import utcnow
from hub.delivery.service import enqueue
from hub.documents.service import announce_document
from hub.errors import Conflict, InvalidInput, NotFound, TooManyRequests
from hub.events.fanout import Broker
from hub.events.service import Actor
from hub.messages.service import post_message
from hub.models import (
    Case,
    DigitalAddress,
    Document,
    InboundReceipt,
    Message,
    OutboxItem,
    Party,
    ReviewItem,
)


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
        .values(source=source, external_id=external_id[:300], received_at=utcnow())
        .on_conflict_do_nothing(index_elements=["source", "external_id"])
    )
    return bool(result.rowcount)


# --- Staff working the queue -------------------------------------------------------------

VERIFICATION_SENDS = 5
# Meta keys that are for the hub only and never shown or copied onto a message.
PRIVATE_META = ("verification",)


@dataclass(frozen=True)
class VerificationResult:
    """The outcome of a code entered for an address verification."""

    verified: bool
    address: DigitalAddress | None = None
    attempts_left: int = 0


def shown_meta(item: ReviewItem) -> dict[str, Any]:
    """The item's meta without the hub's private parts (the verification code's hash)."""
    meta = {k: v for k, v in item.meta.items() if k not in PRIVATE_META}
    verification = item.meta.get("verification")
    if isinstance(verification, dict):
        meta["verification"] = {
            k: v for k, v in verification.items() if k not in ("code_hash", "attempts")
        }
    return meta


async def list_review_items(
    session: AsyncSession,
    *,
    status: str = "open",
    channel: str | None = None,
    limit: int = 50,
) -> list[ReviewItem]:
    """Items in the queue, newest first."""
    query = select(ReviewItem).where(ReviewItem.status == status)
    if channel is not None:
        query = query.where(ReviewItem.channel == channel)
    query = query.order_by(col(ReviewItem.received_at).desc()).limit(limit)
    return list((await session.exec(query)).all())


async def get_review_item(
    session: AsyncSession, item_id: uuid.UUID, *, for_update: bool = False
) -> ReviewItem:
    query = select(ReviewItem).where(ReviewItem.id == item_id)
    if for_update:
        query = query.with_for_update()
    item = (await session.exec(query)).first()
    if item is None:
        raise NotFound("No such review item.")
    return item


async def documents_of_item(session: AsyncSession, item_id: uuid.UUID) -> list[Document]:
    query = (
        select(Document)
        .where(Document.review_item_id == item_id)
        .order_by(col(Document.created_at))
    )
    return list((await session.exec(query)).all())


def _require_open(item: ReviewItem) -> None:
    if item.status != "open":
        raise Conflict(f"This item is {item.status} already.")


async def attach_review_item(
    session: AsyncSession,
    *,
    item: ReviewItem,
    case: Case,
    staff: Actor,
    broker: Broker | None = None,
) -> Message:
    """Put the item on ``case`` as the party's message (identified by staff review); its raw
    mail and attachments go with it. The caller checks that staff may see the case."""
    _require_open(item)
    party = await session.get(Party, case.party_id)
    meta = {
        **shown_meta(item),
        "review_item_id": str(item.id),
        "review_reason": item.reason,
        "attached_by": staff.name,
    }
    meta.pop("verification", None)
    author = Actor(kind="citizen", id=str(case.party_id), name=party.name if party else None)
    message = await post_message(
        session,
        case=case,
        channel=item.channel,
        direction="inbound",
        author=author,
        body=item.body,
        subject=item.subject,
        original_body=item.original_body,
        external_id=item.external_id,
        identified_by="staff_review",
        meta=meta,
        broker=broker,
    )
    for document in await documents_of_item(session, item.id):
        document.party_id = case.party_id
        document.message_id = message.id
        if document.source != "raw_mail":
            # The raw mail stays with the item and the message, not in the case's files.
            document.case_id = case.id
        session.add(document)
        if document.case_id is not None:
            await announce_document(
                session, case_id=case.id, document=document, actor=author, broker=broker
            )
    item.status = "attached"
    item.case_id = case.id
    item.party_id = case.party_id
    item.message_id = message.id
    item.resolved_by = uuid.UUID(staff.id) if staff.id else None
    item.resolved_at = utcnow()
    session.add(item)
    await session.flush()
    return message


async def discard_review_item(
    session: AsyncSession, *, item: ReviewItem, staff_id: uuid.UUID, reason: str
) -> ReviewItem:
    """Close the item without a case (spam, a mail for nobody), with the reason kept."""
    _require_open(item)
    if not reason.strip():
        raise InvalidInput("Say why the item is discarded.")
    item.status = "discarded"
    item.meta = {**item.meta, "discard_reason": reason.strip()[:500]}
    item.resolved_by = staff_id
    item.resolved_at = utcnow()
    session.add(item)
    await session.flush()
    return item


def _code_hash(secret: str, item: ReviewItem, party_id: str, address: str, code: str) -> str:
    # Keyed and bound to the item, party and address: the code proves this address only.
    message = f"review-verification:{item.id}:{party_id}:{address}:{code}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


VERIFICATION_TEXT = {
    "nl": (
        "Uw verificatiecode",
        "Uw verificatiecode is {code}. Noem deze code aan de medewerker van {agency} die u "
        "helpt; daarmee koppelen wij dit adres aan uw gegevens. De code is {minutes} minuten "
        "geldig. Heeft u hier niet om gevraagd? Dan kunt u dit bericht negeren.",
    ),
    "en": (
        "Your verification code",
        "Your verification code is {code}. Tell it to the member of staff of {agency} who is "
        "helping you; it lets us link this address to your details. The code is valid for "
        "{minutes} minutes. Did you not ask for this? Then you can ignore this message.",
    ),
}


async def start_address_verification(
    session: AsyncSession,
    *,
    item: ReviewItem,
    party: Party,
    staff: Actor,
    agency_name: str,
    secret: str,
    minutes: int,
) -> OutboxItem:
    """Send a one-time code to the item's sender address, through the outbox. The address
    is linked to ``party`` only when the code comes back (:func:`confirm_address_verification`).
    A new start replaces the previous code."""
    kind, address = normalise_address(item.sender)
    previous = item.meta.get("verification")
    sends = int(previous.get("sends", 0)) if isinstance(previous, dict) else 0
    if sends >= VERIFICATION_SENDS:
        raise TooManyRequests("Enough codes were sent for this item; link the address another way.")
    code = f"{secrets.randbelow(1_000_000):06d}"
    now = utcnow()
    item.meta = {
        **item.meta,
        "verification": {
            "party_id": str(party.id),
            "kind": kind,
            "address": address,
            "code_hash": _code_hash(secret, item, str(party.id), address, code),
            "attempts": 0,
            "sends": sends + 1,
            "started_by": staff.name,
            "started_at": now.isoformat(),
            "expires_at": (now + dt.timedelta(minutes=minutes)).isoformat(),
        },
    }
    session.add(item)
    language = party.preferred_language if party.preferred_language in VERIFICATION_TEXT else "nl"
    subject, text = VERIFICATION_TEXT[language]
    return await enqueue(
        session,
        channel="email" if kind == "email" else "sms",
        recipient=address,
        template="address_verification",
        body=text.format(code=code, agency=agency_name, minutes=minutes),
        subject=subject if kind == "email" else "",
        language=language,
        party_id=party.id,
        context={"party_name": party.name, "agency_name": agency_name},
    )


async def confirm_address_verification(
    session: AsyncSession, *, item: ReviewItem, code: str, secret: str, max_attempts: int
) -> VerificationResult:
    """Check the code the citizen read out. Right: the address is stored as the party's,
    verified. Wrong: one attempt is used up (the caller must commit that, not roll it back)."""
    verification = item.meta.get("verification")
    if not isinstance(verification, dict) or "code_hash" not in verification:
        raise Conflict("No verification is waiting for this item; start one first.")
    attempts = int(verification.get("attempts", 0))
    expired = dt.datetime.fromisoformat(verification["expires_at"]) <= utcnow()
    if expired or attempts >= max_attempts:
        raise Conflict("This code is no longer valid; start a new verification.")
    expected = _code_hash(
        secret, item, verification["party_id"], verification["address"], code.strip()
    )
    if not hmac.compare_digest(expected, verification["code_hash"]):
        item.meta = {**item.meta, "verification": {**verification, "attempts": attempts + 1}}
        session.add(item)
        await session.flush()
        return VerificationResult(verified=False, attempts_left=max_attempts - attempts - 1)
    party_id = uuid.UUID(verification["party_id"])
    now = utcnow()
    address = (
        await session.exec(
            select(DigitalAddress).where(
                DigitalAddress.party_id == party_id,
                DigitalAddress.kind == verification["kind"],
                DigitalAddress.value == verification["address"],
            )
        )
    ).first()
    if address is None:
        address = DigitalAddress(
            party_id=party_id,
            kind=verification["kind"],
            value=verification["address"],
            verified_at=now,
        )
    elif address.verified_at is None:
        address.verified_at = now
    session.add(address)
    done = {k: v for k, v in verification.items() if k not in ("code_hash", "attempts")}
    item.meta = {**item.meta, "verification": {**done, "verified_at": now.isoformat()}}
    item.party_id = party_id
    session.add(item)
    await session.flush()
    return VerificationResult(verified=True, address=address)
