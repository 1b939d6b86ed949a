"""The print queue: letters waiting for a print-and-post provider or the agency's mail room.

A letter's PDF is a document in the store; its :class:`PrintJob` moves one way only —
queued → collected → posted. Once posted, the outbox row and the message on the case are
delivered and the citizen sees "we posted a letter to you on …" on the case.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.letter.layout import long_date
from hub.clock import local_date
from hub.db import utcnow
from hub.delivery.worker import show_on_message
from hub.documents.service import store_document, stored_content
from hub.errors import Conflict, HubError, NotFound
from hub.events.fanout import Broker
from hub.events.service import Actor, append_event
from hub.models import Case, Document, Message, OutboxItem, PrintJob
from hub.ports import Outbound

PrintStatus = Literal["queued", "collected", "posted"]
# How long the delivery worker leaves a queued letter alone: the print queue, not the
# worker, moves it on; the worker only looks again in case its job was lost.
PRINT_QUEUE_RECHECK = dt.timedelta(days=1)
ORDER: dict[str, int] = {"queued": 0, "collected": 1, "posted": 2}


class StoredLetterDamaged(HubError):
    """The stored PDF is missing or no longer matches its checksum: it must not be printed."""

    status = 500
    title = "Stored letter damaged"
    type_suffix = "stored-letter-damaged"


@dataclass(frozen=True)
class QueuedLetter:
    """A print job with what the print queue shows of it."""

    job: PrintJob
    document: Document
    case: Case | None


async def print_job_for_outbox(session: AsyncSession, outbox_id: uuid.UUID) -> PrintJob | None:
    query = select(PrintJob).where(PrintJob.outbox_id == outbox_id)
    return (await session.exec(query)).first()


async def hold_for_print_queue(session: AsyncSession, outbox_id: uuid.UUID) -> None:
    """Keep the delivery worker from taking the letter's outbox row up again while the
    letter waits to be collected and posted (it stays ``sending`` until then)."""
    outbox = await session.get(OutboxItem, outbox_id)
    if outbox is not None and outbox.status in ("pending", "sending"):
        outbox.next_attempt_at = utcnow() + PRINT_QUEUE_RECHECK
        session.add(outbox)


async def queue_letter(
    session: AsyncSession, *, message: Outbound, pdf: bytes, store: Path
) -> PrintJob:
    """Store the letter's PDF and put it in the print queue of the case's agency.

    One outbox row makes one print job, however often it is sent: when a job exists for
    ``message.id`` (an earlier attempt, or a worker sending the same row at the same time)
    that job is returned and nothing new is stored.
    """
    existing = await print_job_for_outbox(session, message.id)
    if existing is not None:
        return existing
    outbox = await session.get(OutboxItem, message.id)
    if outbox is None:
        raise LookupError(f"outbox row {message.id} does not exist")
    case = await session.get(Case, message.case_id) if message.case_id else None
    reference = case.reference if case else str(message.id)
    try:
        async with session.begin_nested():
            document = await store_document(
                session,
                store=store,
                content=pdf,
                filename=f"letter-{reference}.pdf",
                source="letter",
                uploaded_by_kind="system",
                max_bytes=len(pdf),
                case_id=case.id if case else None,
                party_id=message.party_id,
                message_id=outbox.message_id,
                content_type="application/pdf",
            )
            job = PrintJob(
                outbox_id=message.id,
                agency_id=case.agency_id if case else None,
                case_id=case.id if case else None,
                document_id=document.id,
                recipient=message.recipient[:500],
            )
            session.add(job)
            await session.flush()
    except IntegrityError:
        # Another attempt at the same outbox row got there first: its job is the one.
        existing = await print_job_for_outbox(session, message.id)
        if existing is None:
            raise
        return existing
    return job


async def print_queue(
    session: AsyncSession, *, agency_id: str, status: PrintStatus | None = None, limit: int = 100
) -> list[QueuedLetter]:
    """The agency's print jobs, oldest first (``status`` narrows them)."""
    query = (
        select(PrintJob, Document, Case)
        .join(Document, col(Document.id) == col(PrintJob.document_id))
        .outerjoin(Case, col(Case.id) == col(PrintJob.case_id))
        .where(PrintJob.agency_id == agency_id)
    )
    if status is not None:
        query = query.where(PrintJob.status == status)
    query = query.order_by(col(PrintJob.created_at), col(PrintJob.id)).limit(limit)
    rows = (await session.exec(query)).all()
    return [QueuedLetter(job, document, case) for job, document, case in rows]


async def letter_of_agency(
    session: AsyncSession, *, agency_id: str, job_id: uuid.UUID, for_update: bool = False
) -> QueuedLetter:
    """One of the agency's print jobs; another agency's is "not found", as a missing one."""
    query = (
        select(PrintJob, Document, Case)
        .join(Document, col(Document.id) == col(PrintJob.document_id))
        .outerjoin(Case, col(Case.id) == col(PrintJob.case_id))
        .where(PrintJob.id == job_id, PrintJob.agency_id == agency_id)
    )
    if for_update:
        query = query.with_for_update(of=PrintJob)
    row = (await session.exec(query)).first()
    if row is None:
        raise NotFound("No such print job.")
    job, document, case = row
    return QueuedLetter(job, document, case)


def letter_pdf(store: Path, document: Document) -> bytes:
    """The PDF as stored, checked against its checksum; a damaged one is never handed out."""
    return stored_content(
        store,
        document,
        damaged=StoredLetterDamaged(
            "The stored letter is missing or does not match its checksum. It will not be "
            "printed; ask the agency to send it again."
        ),
    )


def _refuse_step_back(job: PrintJob, wanted: PrintStatus) -> None:
    if ORDER[job.status] > ORDER[wanted]:
        raise Conflict(
            f"This letter is {job.status} already; it cannot go back to {wanted}.",
            current_status=job.status,
        )


async def mark_collected(session: AsyncSession, job: PrintJob) -> PrintJob:
    """Record that the letter was collected for printing (again: no change)."""
    _refuse_step_back(job, "collected")
    if job.status == "queued":
        job.status = "collected"
        job.collected_at = utcnow()
        session.add(job)
    return job


async def mark_posted(
    session: AsyncSession,
    job: PrintJob,
    *,
    actor: Actor,
    timezone: str,
    broker: Broker | None = None,
) -> PrintJob:
    """Record that the letter was posted: its delivery and message become ``delivered`` and
    the case shows the citizen when it was posted. Posting it again changes nothing."""
    if job.status == "posted":
        return job
    now = utcnow()
    job.status = "posted"
    job.collected_at = job.collected_at or now
    job.posted_at = now
    session.add(job)
    outbox = await session.get(OutboxItem, job.outbox_id)
    message = None
    if outbox is not None:
        outbox.status = "delivered"
        outbox.updated_at = now
        session.add(outbox)
        await show_on_message(session, outbox)
        if outbox.message_id is not None:
            message = await session.get(Message, outbox.message_id)
    if job.case_id is not None:
        language = outbox.language if outbox is not None else "nl"
        posted_on = local_date(now, timezone)
        subject = outbox.subject if outbox is not None else ""
        text = (
            f"We posted a letter to you on {long_date(posted_on, 'en')}."
            if language == "en"
            else f"We hebben u op {long_date(posted_on, 'nl')} een brief gestuurd."
        )
        await append_event(
            session,
            case_id=job.case_id,
            kind="letter_posted",
            actor=actor,
            payload={
                "print_job_id": str(job.id),
                "message_id": str(message.id) if message else None,
                "subject": subject,
                "posted_at": now.isoformat(),
                "posted_on": posted_on.isoformat(),
                "text": text,
            },
            audience="citizen",
            broker=broker,
        )
    return job
