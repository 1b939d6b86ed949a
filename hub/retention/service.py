"""Retention: a closed case is removed with its messages once its journey's term has run.

What goes: the case, its events, messages, chats, participants, timers, notices, what was
to be delivered (outbox, print jobs), its documents (rows, and each file no other document
shares) and the review items its messages came from. What stays: the access log entries
about the case, pseudonymised — their ``party_id`` is dropped, their ``subject`` (an HMAC of
the party id) and hash stay, so the chain still verifies; and the party, who may have other
cases. The term is the journey's ``retention`` (latest version), counted from ``closed_at``;
a case of a journey the catalogue no longer has keeps the default term.
"""

from __future__ import annotations

import logging
import time
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sqlmodel import col, delete, or_, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.db import Database, utcnow
from hub.models import (
    AccessLogEntry,
    Case,
    CaseEvent,
    CaseParticipant,
    Conversation,
    Document,
    Message,
    Notice,
    OutboxItem,
    PrintJob,
    ReviewItem,
    Timer,
)
from journeys.catalog import Catalog
from journeys.model import DEFAULT_RETENTION

log = logging.getLogger("hub.retention")

# The worker looks for expired cases this often; sooner again while a batch came back full.
INTERVAL_SECONDS = 600.0
BATCH_CASES = 100
BATCHES_A_RUN = 10


@dataclass
class Removed:
    """What one run removed, and how many access log entries it pseudonymised."""

    cases: int = 0
    messages: int = 0
    events: int = 0
    documents: int = 0
    notices: int = 0
    deliveries: int = 0
    access_log_pseudonymised: int = 0

    def add(self, other: Removed) -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


async def expired_case_ids(
    session: AsyncSession, catalog: Catalog, *, limit: int = BATCH_CASES
) -> list[uuid.UUID]:
    """Closed cases whose journey's retention term has run, oldest closed first."""
    now = utcnow()
    terms = {definition.id: definition.retention for definition in catalog.all()}
    expired = [
        (col(Case.journey_id) == journey_id) & (col(Case.closed_at) < term.before(now))
        for journey_id, term in terms.items()
    ]
    expired.append(
        col(Case.journey_id).not_in(list(terms))
        & (col(Case.closed_at) < DEFAULT_RETENTION.before(now))
    )
    query = (
        select(Case.id)
        .where(col(Case.status) == "closed", col(Case.closed_at).is_not(None), or_(*expired))
        .order_by(col(Case.closed_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.exec(query)).all())


def _rows(result: Any) -> int:
    return int(result.rowcount or 0)


async def remove_cases(
    session: AsyncSession, case_ids: Sequence[uuid.UUID]
) -> tuple[Removed, list[str]]:
    """Remove these cases and what belongs to them (see the module); pseudonymise their
    access log entries. Returns the counts and the storage keys of the documents removed."""
    removed = Removed()
    if not case_ids:
        return removed, []
    ids = list(case_ids)
    conversations = select(Conversation.id).where(col(Conversation.case_id).in_(ids))
    messages = select(Message.id).where(
        or_(col(Message.case_id).in_(ids), col(Message.conversation_id).in_(conversations))
    )
    notices = select(Notice.id).where(col(Notice.case_id).in_(ids))
    reviews = select(ReviewItem.id).where(
        or_(col(ReviewItem.case_id).in_(ids), col(ReviewItem.message_id).in_(messages))
    )
    documents = select(Document.id).where(
        or_(
            col(Document.case_id).in_(ids),
            col(Document.message_id).in_(messages),
            col(Document.review_item_id).in_(reviews),
        )
    )
    outbox = select(OutboxItem.id).where(
        or_(
            col(OutboxItem.case_id).in_(ids),
            col(OutboxItem.message_id).in_(messages),
            col(OutboxItem.notice_id).in_(notices),
        )
    )
    keys = list(
        (await session.exec(select(Document.storage_key).where(col(Document.id).in_(documents))))
        .unique()
        .all()
    )

    # Children before their parents: each statement's subqueries still find their rows.
    removed.deliveries += _rows(
        await session.exec(
            delete(PrintJob).where(
                or_(
                    col(PrintJob.case_id).in_(ids),
                    col(PrintJob.document_id).in_(documents),
                    col(PrintJob.outbox_id).in_(outbox),
                )
            )
        )
    )
    removed.deliveries += _rows(
        await session.exec(delete(OutboxItem).where(col(OutboxItem.id).in_(outbox)))
    )
    removed.documents = _rows(
        await session.exec(delete(Document).where(col(Document.id).in_(documents)))
    )
    await session.exec(delete(ReviewItem).where(col(ReviewItem.id).in_(reviews)))
    removed.messages = _rows(
        await session.exec(delete(Message).where(col(Message.id).in_(messages)))
    )
    await session.exec(delete(Conversation).where(col(Conversation.case_id).in_(ids)))
    removed.notices = _rows(await session.exec(delete(Notice).where(col(Notice.id).in_(notices))))
    removed.events = _rows(
        await session.exec(delete(CaseEvent).where(col(CaseEvent.case_id).in_(ids)))
    )
    await session.exec(delete(CaseParticipant).where(col(CaseParticipant.case_id).in_(ids)))
    await session.exec(delete(Timer).where(col(Timer.case_id).in_(ids)))
    # The one change the access log's triggers allow: the entry keeps its pseudonym and hash.
    removed.access_log_pseudonymised = _rows(
        await session.exec(
            update(AccessLogEntry)
            .where(col(AccessLogEntry.case_id).in_(ids), col(AccessLogEntry.party_id).is_not(None))
            .values(party_id=None)
        )
    )
    removed.cases = _rows(await session.exec(delete(Case).where(col(Case.id).in_(ids))))
    return removed, keys


async def _remove_unshared_files(database: Database, store: Path, keys: list[str]) -> None:
    """Delete the files no remaining document points at (files are stored by checksum, so two
    documents with the same content share one)."""
    if not keys:
        return
    async with database.session() as session:
        still_used = set(
            (
                await session.exec(
                    select(Document.storage_key).where(col(Document.storage_key).in_(keys))
                )
            ).all()
        )
    for key in set(keys) - still_used:
        (store / key).unlink(missing_ok=True)


async def apply_retention(
    database: Database,
    *,
    catalog: Catalog,
    store: Path | None = None,
    batch: int = BATCH_CASES,
    max_batches: int = BATCHES_A_RUN,
) -> Removed:
    """Remove closed cases past their term, ``batch`` cases a transaction, at most
    ``max_batches`` transactions a call (the rest on the next call). Logs what it removed."""
    total = Removed()
    for _ in range(max_batches):
        async with database.session() as session:
            case_ids = await expired_case_ids(session, catalog, limit=batch)
            removed, keys = await remove_cases(session, case_ids)
        if store is not None:
            await _remove_unshared_files(database, store, keys)
        total.add(removed)
        if removed.cases:
            log.info(
                "retention: removed %d closed cases past their term (%d messages, %d events, "
                "%d documents, %d notices, %d deliveries); %d access log entries pseudonymised",
                removed.cases,
                removed.messages,
                removed.events,
                removed.documents,
                removed.notices,
                removed.deliveries,
                removed.access_log_pseudonymised,
            )
        if len(case_ids) < batch:
            break
    return total


_next_run: weakref.WeakKeyDictionary[Database, float] = weakref.WeakKeyDictionary()


async def retention_step(database: Database, catalog: Catalog, store: Path | None = None) -> int:
    """The worker's periodic step: :func:`apply_retention` once every ``INTERVAL_SECONDS``,
    or at once again while there was more than a call removes. Returns cases removed."""
    now = time.monotonic()
    if now < _next_run.get(database, 0.0):
        return 0
    removed = await apply_retention(database, catalog=catalog, store=store)
    full = removed.cases >= BATCH_CASES * BATCHES_A_RUN
    _next_run[database] = now if full else now + INTERVAL_SECONDS
    return removed.cases
