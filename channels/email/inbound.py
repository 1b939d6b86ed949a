"""Inbound mail onto its case: the one function both the SMTP receiver and the HTTP endpoint
call.

A reply is threaded by the signed reply token in a recipient address, else by In-Reply-To
and References naming a mail the hub sent. The From address never identifies anyone. A mail
that matches no case, or whose token does not bind the case's party, goes to the review
queue with its raw MIME kept; nothing is dropped. A mail is applied once per Message-ID.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.email.adapter import address_of, one_line
from channels.email.parsing import DeliveryStatus, ParsedMail, parse_mail, unreadable_mail
from channels.email.tokens import read_token, token_in
from hub.config import Settings
from hub.db import utcnow
from hub.delivery.worker import fall_back, show_on_message
from hub.documents.service import DocumentRefused, announce_document, store_document
from hub.events.fanout import Broker
from hub.events.service import Actor
from hub.messages.service import post_message
from hub.models import Case, DigitalAddress, Document, Message, OutboxItem, Party, ReviewItem
from hub.review.service import add_review_item, first_receipt

log = logging.getLogger("channels.email")

Via = Literal["smtp", "http"]


@dataclass(frozen=True)
class Match:
    """The case a mail belongs to and how that was found, or why none was found."""

    case: Case | None
    identified_by: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class MailOutcome:
    outcome: Literal["message", "review", "duplicate", "delivery_status"]
    message_id: str
    message: Message | None = None
    review_item: ReviewItem | None = None
    outbox_item: OutboxItem | None = None


async def match_case(
    session: AsyncSession, mail: ParsedMail, *, settings: Settings, envelope: Sequence[str] = ()
) -> Match:
    """Which case the mail replies to. A token, when present, decides alone: a bad one sends
    the mail to review rather than letting the thread headers have a go."""
    domain = settings.inbound_mail_domain
    tokens = [t for a in (*envelope, *mail.recipients) if (t := token_in(a, domain)) is not None]
    if tokens:
        secret = settings.secret_key.get_secret_value()
        reason = "token_invalid"
        for token in dict.fromkeys(t.lower() for t in tokens):
            read = read_token(secret, token)
            if read is None:
                continue
            case = await session.get(Case, read.case_id)
            if case is None:
                reason = "token_unknown_case"
            elif not read.binds(case.party_id):
                reason = "token_party_mismatch"
            else:
                return Match(case, identified_by="reply_token")
        return Match(None, reason=reason)
    if not mail.thread_ids:
        return Match(None, reason="no_token")
    sent = (
        await session.exec(
            select(OutboxItem).where(
                OutboxItem.channel == "email",
                col(OutboxItem.provider_id).in_(mail.thread_ids),
                col(OutboxItem.case_id).is_not(None),
            )
        )
    ).all()
    reason = "unknown_thread"
    # In-Reply-To comes first in thread_ids: the mail answered directly wins.
    for item in sorted(sent, key=lambda i: mail.thread_ids.index(i.provider_id or "")):
        case = await session.get(Case, item.case_id)
        if case is None:
            continue
        if item.party_id != case.party_id:
            reason = "thread_party_mismatch"
            continue
        return Match(case, identified_by="thread_headers")
    return Match(None, reason=reason)


async def _suggested_party(session: AsyncSession, sender: str) -> uuid.UUID | None:
    """The one party that has verified the sender's address: a hint for staff, never a match."""
    if not sender:
        return None
    owners = (
        await session.exec(
            select(DigitalAddress.party_id).where(
                DigitalAddress.kind == "email",
                DigitalAddress.value == sender,
                col(DigitalAddress.verified_at).is_not(None),
            )
        )
    ).all()
    return owners[0] if len(set(owners)) == 1 else None


async def _store_attachments(
    session: AsyncSession,
    mail: ParsedMail,
    *,
    settings: Settings,
    case_id: uuid.UUID | None = None,
    party_id: uuid.UUID | None = None,
    message_id: uuid.UUID | None = None,
    review_item_id: uuid.UUID | None = None,
    author: Actor | None = None,
    broker: Broker | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Keep each attachment that passes the document store's type and size checks; list the
    others with the reason, so none is lost without a trace. A file kept on a case is
    announced on it (``document_added``) by ``author``."""
    kept: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    for attachment in mail.attachments:
        try:
            document = await store_document(
                session,
                store=settings.document_store,
                content=attachment.content,
                filename=attachment.filename,
                source="email",
                uploaded_by_kind="citizen" if party_id else "system",
                uploaded_by_id=str(party_id) if party_id else None,
                max_bytes=settings.max_upload_bytes,
                case_id=case_id,
                party_id=party_id,
                message_id=message_id,
                review_item_id=review_item_id,
            )
        except DocumentRefused as refusal:
            refused.append(
                {
                    "filename": attachment.filename,
                    "declared_type": attachment.declared_type,
                    "size": len(attachment.content),
                    "reason": refusal.detail,
                }
            )
        else:
            if case_id is not None and author is not None:
                await announce_document(
                    session, case_id=case_id, document=document, actor=author, broker=broker
                )
            kept.append(
                {
                    "document_id": str(document.id),
                    "filename": document.filename,
                    "content_type": document.content_type,
                    "size": document.size,
                }
            )
    return kept, refused


async def _keep_raw(
    session: AsyncSession,
    raw: bytes,
    *,
    settings: Settings,
    party_id: uuid.UUID | None = None,
    message_id: uuid.UUID | None = None,
    review_item_id: uuid.UUID | None = None,
) -> Document:
    """The mail exactly as it arrived (headers, HTML, signatures), beside its message or
    review item but not among the case's files: the evidence behind what the case shows."""
    return await store_document(
        session,
        store=settings.document_store,
        content=raw,
        filename="mail.eml",
        source="raw_mail",
        uploaded_by_kind="system",
        max_bytes=settings.max_mail_bytes,
        party_id=party_id,
        message_id=message_id,
        review_item_id=review_item_id,
        content_type="message/rfc822",
    )


def _meta(mail: ParsedMail, via: Via) -> dict[str, Any]:
    meta: dict[str, Any] = {
        **mail.authentication,
        "from": mail.sender,
        "from_name": mail.sender_name,
        "received_via": via,
    }
    if mail.authentication_by:
        # Only a verdict by the agency's own boundary server means anything; staff see whose.
        meta["authentication_by"] = mail.authentication_by
    if mail.auto_submitted:
        # Kept, as everything is, but marked: an out-of-office answer is not the citizen's.
        meta["auto_submitted"] = mail.auto_submitted
    return meta


async def receive_mail(
    session: AsyncSession,
    *,
    raw: bytes,
    settings: Settings,
    via: Via,
    envelope_recipients: Sequence[str] = (),
    broker: Broker | None = None,
) -> MailOutcome:
    """Put one inbound mail on its case, or in the review queue; once per Message-ID.

    Everything happens in the caller's transaction: if it rolls back, the mail was not
    received (and the receipt that deduplicates it goes too), so the sender may try again.
    """
    readable = True
    try:
        mail = parse_mail(raw)
    except Exception as failure:  # a mail no parser rule foresaw is kept, not refused
        readable = False
        log.warning(
            "inbound mail could not be parsed (%s); kept for review", type(failure).__name__
        )
        mail = unreadable_mail(raw)
    if not await first_receipt(session, "email", mail.message_id):
        return MailOutcome("duplicate", mail.message_id)
    if mail.delivery_status is not None:
        outbox = await apply_delivery_status(
            session, mail.delivery_status, raw, settings=settings, broker=broker
        )
        if outbox is not None:
            return MailOutcome("delivery_status", mail.message_id, outbox_item=outbox)
    if readable:
        match = await match_case(session, mail, settings=settings, envelope=envelope_recipients)
    else:
        match = Match(None, reason="unreadable")
    meta = _meta(mail, via)
    if match.case is None:
        return await _to_review(session, mail, raw, settings=settings, meta=meta, match=match)
    case = match.case
    party = await session.get(Party, case.party_id)
    author = Actor(kind="citizen", id=str(case.party_id), name=party.name if party else None)
    message = await post_message(
        session,
        case=case,
        channel="email",
        direction="inbound",
        author=author,
        body=mail.body,
        original_body=mail.text or None,
        subject=mail.subject,
        external_id=mail.message_id,
        identified_by=match.identified_by,
        meta=meta,
        broker=broker,
    )
    kept, refused = await _store_attachments(
        session,
        mail,
        settings=settings,
        case_id=case.id,
        party_id=case.party_id,
        message_id=message.id,
        author=author,
        broker=broker,
    )
    raw_document = await _keep_raw(
        session, raw, settings=settings, party_id=case.party_id, message_id=message.id
    )
    message.meta = {
        **message.meta,
        "raw_document_id": str(raw_document.id),
        "attachments": kept,
        "attachments_refused": refused,
    }
    session.add(message)
    await session.flush()
    log.info("mail %s threaded onto case %s by %s", message.id, case.id, match.identified_by)
    return MailOutcome("message", mail.message_id, message=message)


async def apply_delivery_status(
    session: AsyncSession,
    report: DeliveryStatus,
    raw: bytes,
    *,
    settings: Settings,
    broker: Broker | None = None,
) -> OutboxItem | None:
    """A bounce of a mail the hub sent: the delivery ends in permanent-failure and passes to
    the next channel (email → SMS → letter), as a refusal during sending does. Other reports
    (delayed, relayed) are kept with the delivery without changing it. None when the report
    is about no mail of ours."""
    outbox = (
        await session.exec(
            select(OutboxItem)
            .where(
                OutboxItem.channel == "email",
                col(OutboxItem.provider_id).in_(report.original_ids),
            )
            .with_for_update()
        )
    ).first()
    if outbox is None:
        outbox = await _sent_unrecorded(session, report.original_ids, settings=settings)
    if outbox is None:
        return None
    await _keep_raw(
        session, raw, settings=settings, party_id=outbox.party_id, message_id=outbox.message_id
    )
    reports = [
        *outbox.meta.get("delivery_reports", []),
        {"action": report.action, "status": report.status},
    ]
    outbox.meta = {**outbox.meta, "delivery_reports": reports[-10:]}
    if report.failed and outbox.status != "permanent-failure":
        outbox.status = "permanent-failure"
        outbox.last_error = one_line(f"bounced {report.status}: {report.diagnostic or ''}")
        outbox.claimed_until = None
        outbox.updated_at = utcnow()
        await show_on_message(session, outbox)
        session.add(outbox)
        await fall_back(session, outbox, broker=broker)
        log.info("outbox %s bounced (%s)", outbox.id, report.status)
    session.add(outbox)
    await session.flush()
    return outbox


async def _sent_unrecorded(
    session: AsyncSession, original_ids: Sequence[str], *, settings: Settings
) -> OutboxItem | None:
    """The mail the report is about when the worker that sent it died before it wrote down
    its Message-ID: the hub's Message-IDs are made from the row's id (``SmtpAdapter``)."""
    domain = (address_of(settings.mail_from) or "").rpartition("@")[2]
    ids = []
    for original in original_ids:
        local, _, host = original.strip("<>").partition("@")
        with contextlib.suppress(ValueError):
            if host.lower() == domain.lower() and len(local) == 32:
                ids.append(uuid.UUID(hex=local))
    if not ids:
        return None
    query = select(OutboxItem).where(
        col(OutboxItem.id).in_(ids),
        OutboxItem.channel == "email",
        col(OutboxItem.provider_id).is_(None),
    )
    outbox = (await session.exec(query.with_for_update())).first()
    if outbox is not None:
        outbox.provider, outbox.provider_id = "smtp", f"<{outbox.id.hex}@{domain}>"
    return outbox


async def _to_review(
    session: AsyncSession,
    mail: ParsedMail,
    raw: bytes,
    *,
    settings: Settings,
    meta: dict[str, Any],
    match: Match,
) -> MailOutcome:
    item = await add_review_item(
        session,
        channel="email",
        sender=mail.sender or "(no sender)",
        subject=mail.subject,
        body=mail.body,
        original_body=mail.text or None,
        external_id=mail.message_id,
        reason=match.reason or "no_token",
        meta=meta,
        party_id=await _suggested_party(session, mail.sender),
    )
    raw_document = await _keep_raw(session, raw, settings=settings, review_item_id=item.id)
    kept, refused = await _store_attachments(
        session, mail, settings=settings, review_item_id=item.id
    )
    item.meta = {
        **item.meta,
        "raw_document_id": str(raw_document.id),
        "attachments": kept,
        "attachments_refused": refused,
    }
    session.add(item)
    await session.flush()
    log.info("mail to review item %s: %s", item.id, item.reason)
    return MailOutcome("review", mail.message_id, review_item=item)
