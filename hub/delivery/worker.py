"""The delivery worker: claims due outbox rows, sends them through the channel adapters,
records what happened, and fires due timers.

In the embedded default it runs inside ``hub serve``; in production as ``hub worker``
processes. The database session is closed before a provider is called, so a slow provider
never holds a connection; a claim expires, so a crashed worker's rows are taken up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import and_, col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.db import Database, utcnow
from hub.events.fanout import Broker
from hub.messages.service import record_fallback, route, send_to_party
from hub.models import Case, Message, OutboxItem, Party
from hub.notices.escalation import escalate_unread_notices
from hub.notices.jobs import process_notice_jobs
from hub.notices.service import notice_status_from_outbox, release_held_notices
from hub.ports import AdapterRegistry, DeliveryReport, Outbound, TemporaryFailure
from hub.timers.service import fire_due_timers
from hub.webhooks.service import notice_status_changed
from hub.webhooks.worker import deliver_webhooks
from journeys.catalog import Catalog

log = logging.getLogger("hub.delivery")

CLAIM_SECONDS = 120
MAX_ATTEMPTS = 8


def backoff(attempts: int) -> dt.timedelta:
    """2, 4, 8 … seconds, capped at an hour."""
    return dt.timedelta(seconds=min(2**attempts, 3600))


async def claim_due(
    database: Database, *, limit: int = 20, claim_seconds: float = CLAIM_SECONDS
) -> list[Outbound]:
    """Mark up to ``limit`` due rows as claimed by this worker and return what to send.

    A claim lasts ``claim_seconds``: long enough to send the batch, after which the rows of
    a worker that died are due again for another.
    """
    now = utcnow()
    async with database.session() as session:
        query = (
            select(OutboxItem)
            # A row "sending" with a provider id is with the provider (a text awaiting its
            # status callback, a letter in the print queue): only rows not handed over are due.
            .where(
                or_(
                    col(OutboxItem.status) == "pending",
                    and_(
                        col(OutboxItem.status) == "sending",
                        col(OutboxItem.provider_id).is_(None),
                    ),
                )
            )
            .where(OutboxItem.next_attempt_at <= now)
            .where(
                or_(col(OutboxItem.claimed_until).is_(None), col(OutboxItem.claimed_until) < now)
            )
            .order_by(col(OutboxItem.next_attempt_at))
            .limit(limit)
        )
        if database.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        items = list((await session.exec(query)).all())
        for item in items:
            item.status = "sending"
            item.claimed_until = now + dt.timedelta(seconds=claim_seconds)
            item.updated_at = now
            session.add(item)
        return [
            Outbound(
                id=i.id,
                channel=i.channel,
                recipient=i.recipient,
                subject=i.subject,
                body=i.body,
                language=i.language,
                template=i.template,
                case_id=i.case_id,
                party_id=i.party_id,
                context=dict(i.meta),
            )
            for i in items
        ]


async def record(
    database: Database,
    item_id: uuid.UUID,
    report: DeliveryReport | None,
    error: str | None = None,
    *,
    broker: Broker | None = None,
) -> None:
    """Write the outcome of one attempt; a temporary error is retried until the budget ends.

    A bounce (permanent failure) of a message to a party on a case passes it to the next
    channel of email → SMS → letter, recorded on the case.
    """
    now = utcnow()
    async with database.session() as session:
        item = await session.get(OutboxItem, item_id)
        if item is None:
            return
        item.attempts += 1
        item.claimed_until = None
        item.updated_at = now
        if report is not None:
            # A callback (or a posted letter) may have written the final status already.
            accepted_late = report.status == "sending" and item.status != "sending"
            item.status = item.status if accepted_late else report.status
            item.provider = report.provider
            item.provider_id = report.provider_id
            item.last_error = report.detail
        elif item.attempts >= MAX_ATTEMPTS:
            item.status = "technical-failure"
            item.last_error = error
        else:
            item.status = "sending"
            item.last_error = error
            item.next_attempt_at = now + backoff(item.attempts)
        session.add(item)
        await show_on_message(session, item)
        if item.status == "permanent-failure":
            await fall_back(session, item, broker=broker)


async def show_on_message(session: AsyncSession, item: OutboxItem) -> None:
    """Copy the delivery's status onto its message, where the case's thread shows it, and
    onto its notice (which falls back by its own rules when it bounced, and whose agency is
    told by webhook)."""
    if item.message_id is not None:
        message = await session.get(Message, item.message_id)
        if message is not None:
            message.delivery_status = item.status
            session.add(message)
    if item.notice_id is not None:
        notice = await notice_status_from_outbox(session, item)
        if notice is not None:
            await notice_status_changed(session, notice)  # the agency's webhook, if any


async def fall_back(session: AsyncSession, item: OutboxItem, *, broker: Broker | None) -> None:
    """Send a bounced message to the party on the next channel that has an address."""
    if item.notice_id is not None:
        return  # a notice falls back by its own rules (``show_on_message``)
    if item.case_id is None or item.party_id is None:
        return
    case = await session.get(Case, item.case_id)
    party = await session.get(Party, item.party_id)
    if case is None or party is None:
        return
    tried = tuple(item.meta.get("tried") or [item.channel])
    target = await route(session, party, None, tried=tried)
    await record_fallback(
        session, case=case, from_channel=item.channel, to=target, reason="bounced", broker=broker
    )
    if target is None:
        return
    message = await session.get(Message, item.message_id) if item.message_id else None
    extra = {k: v for k, v in item.meta.items() if k not in ("tried",)}
    await send_to_party(
        session,
        case=case,
        party=party,
        target=target,
        body=item.body,
        subject=item.subject,
        template=item.template,
        message=message,
        tried=tried,
        extra_context=extra,
    )


async def deliver_once(
    database: Database,
    adapters: AdapterRegistry,
    *,
    limit: int = 20,
    broker: Broker | None = None,
    claim_seconds: float = CLAIM_SECONDS,
) -> int:
    """Send what is due now; returns how many rows were attempted."""
    batch = await claim_due(database, limit=limit, claim_seconds=claim_seconds)
    for message in batch:
        adapter = adapters.get(message.channel)
        if adapter is None:
            await record(
                database,
                message.id,
                DeliveryReport(
                    status="permanent-failure",
                    provider="none",
                    detail=f"no adapter for channel {message.channel}",
                ),
                broker=broker,
            )
            continue
        try:
            report = await adapter.send(message)
        except TemporaryFailure as failure:
            await record(database, message.id, None, error=str(failure)[:1000], broker=broker)
        except Exception as failure:
            log.warning(
                "delivery %s via %s failed: %s", message.id, message.channel, type(failure).__name__
            )
            await record(database, message.id, None, error=type(failure).__name__, broker=broker)
        else:
            await record(database, message.id, report, broker=broker)
    return len(batch)


@dataclass
class Worker:
    """Delivery and timers, in a loop until stopped."""

    database: Database
    adapters: AdapterRegistry
    catalog: Catalog
    broker: Broker | None
    timezone: str
    interval: float = 1.0
    claim_seconds: float = CLAIM_SECONDS
    # For bulk notice jobs: the public URL (links in mails) and the store holding the files.
    base_url: str = ""
    document_store: Path | None = None

    async def run_once(self) -> int:
        fired = await fire_due_timers(
            self.database, catalog=self.catalog, broker=self.broker, timezone=self.timezone
        )
        fired += await release_held_notices(self.database)
        fired += await escalate_unread_notices(self.database, timezone=self.timezone)
        delivered = await deliver_once(
            self.database, self.adapters, broker=self.broker, claim_seconds=self.claim_seconds
        )
        delivered += await deliver_webhooks(self.database)
        if self.document_store is not None:
            fired += await process_notice_jobs(
                self.database,
                store=self.document_store,
                catalog=self.catalog,
                timezone=self.timezone,
                base_url=self.base_url,
            )
        return fired + delivered

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                busy = await self.run_once()
            except Exception:
                log.exception("worker round failed; retrying")
                busy = 0
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.interval)
