"""The delivery worker: claims due outbox rows, sends them through the channel adapters,
records what happened, and fires due timers.

In the embedded default it runs inside ``hub serve``; in production as ``hub worker``
processes. The database session is closed before a provider is called, so a slow provider
never holds a connection; a claim expires, so a crashed worker's rows are taken up again.

A round sends up to ``concurrency`` messages at once per channel and records outcomes in
batches (:class:`Round`); stopped, the worker lets the sends under way finish and gives its
other claims back at once (:meth:`Worker.run`). ``bench/email_delivery.py`` measures it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import functools
import logging
import time
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import sqlalchemy as sa
from sqlalchemy import bindparam, case, update
from sqlmodel import and_, col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.db import Database, UTCDateTime, utcnow
from hub.events.fanout import Broker
from hub.insights.rollup import roll_up_insights
from hub.messages.service import record_fallback, route, send_to_party
from hub.models import Case, Message, Notice, OutboxItem, Party
from hub.notices.escalation import escalate_unread_notices
from hub.notices.jobs import process_notice_jobs
from hub.notices.service import notice_status_from_outbox, release_held_notices
from hub.ports import AdapterRegistry, DeliveryReport, Outbound, TemporaryFailure
from hub.retention.service import retention_step
from hub.timers.service import fire_due_timers
from hub.webhooks.service import notice_status_changed
from hub.webhooks.worker import deliver_webhooks
from journeys.catalog import Catalog

log = logging.getLogger("hub.delivery")

CLAIM_SECONDS = 120
MAX_ATTEMPTS = 8
# Sends at once per channel, unless the wiring gives the worker another ``concurrency``;
# and rows a worker round takes per concurrent send: a busy worker's round stays short, so
# timers and the other steps of ``run_once`` are never held up for long.
CONCURRENCY = 16
ROUND_ROWS_PER_SEND = 250
# A round claims no more rows after this long, whatever is left of its rows: a round's end
# (and the timers between rounds) is a pause for the sends, so it should not come too often.
ROUND_SECONDS = 1.0
CLAIM_CHUNK = 50  # rows claimed at a time, at least
CLAIM_PER_SEND = 8  # and per concurrent send
# Messages handed over but not yet recorded, per concurrent send: the more, the larger the
# batches in which outcomes are recorded, and the more a crash may send twice.
UNRECORDED_PER_SEND = 4
# A send starts within this share of its claim, so that it ends before the claim does.
SEND_WITHIN_CLAIM = 0.75
RECORD_LINGER_SECONDS = 0.01  # at most, for outcomes to gather into one transaction
# An outcome the database did not take is tried again after this (doubling, to 2 s), while
# its claim lasts this long again.
RECORD_RETRY_SECONDS = 0.25
GRACE_SECONDS = 10.0  # for sends under way to finish when the worker is stopped


def backoff(attempts: int) -> dt.timedelta:
    """2, 4, 8 … seconds, capped at an hour."""
    return dt.timedelta(seconds=min(2**attempts, 3600))


async def claim_due(
    database: Database,
    *,
    limit: int = 20,
    claim_seconds: float = CLAIM_SECONDS,
    now: dt.datetime | None = None,
) -> list[Outbound]:
    """Mark up to ``limit`` due rows as claimed by this worker and return what to send,
    oldest due first.

    A claim lasts ``claim_seconds`` from ``now``: long enough to send the batch, after
    which the rows of a worker that died are due again for another. One statement claims
    and returns them.
    """
    now = now or utcnow()
    claim = claim_statement(database.dialect == "postgresql")
    values = {"now": now, "until": now + dt.timedelta(seconds=claim_seconds), "limit": limit}
    if database.dialect == "postgresql":
        # One statement is a transaction of its own: no BEGIN and COMMIT round trips.
        async with database.reader.connect() as connection:
            rows = (await connection.execute(claim, values)).all()
    else:
        async with database.session() as session:
            connection = await session.connection()
            rows = (await connection.execute(claim, values)).all()
    return [
        Outbound(
            id=row.id,
            channel=row.channel,
            recipient=row.recipient,
            subject=row.subject,
            body=row.body,
            language=row.language,
            template=row.template,
            case_id=row.case_id,
            party_id=row.party_id,
            context=dict(row.meta),
        )
        for row in sorted(rows, key=lambda row: row.next_attempt_at)
    ]


CLAIM_LAPSED = "outcome unknown: a claim ran out unrecorded, so this may be sent twice"


@functools.cache
def claim_statement(skip_locked: bool) -> sa.Update:
    """The statement of :func:`claim_due`, built once with named parameters (``now``,
    ``until``, ``limit``): building and keying a statement costs more than running it."""
    now = bindparam("now", type_=UTCDateTime())
    due = (
        select(col(OutboxItem.id))
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
        .where(col(OutboxItem.next_attempt_at) <= now)
        .where(or_(col(OutboxItem.claimed_until).is_(None), col(OutboxItem.claimed_until) < now))
        .order_by(col(OutboxItem.next_attempt_at))
        .limit(bindparam("limit", type_=sa.Integer()))
    )
    if skip_locked:
        due = due.with_for_update(skip_locked=True)
    # A row still claimed here had a claim that ran out with nothing recorded (the worker
    # died, or could not write the outcome): it may have been sent. That counts as an attempt,
    # and the row says so until its next outcome is written.
    lapsed = col(OutboxItem.claimed_until).is_not(None)
    return (
        update(OutboxItem)
        .where(col(OutboxItem.id).in_(due))
        .values(
            status="sending",
            claimed_until=bindparam("until", type_=UTCDateTime()),
            updated_at=now,
            attempts=case((lapsed, col(OutboxItem.attempts) + 1), else_=col(OutboxItem.attempts)),
            last_error=case((lapsed, CLAIM_LAPSED), else_=col(OutboxItem.last_error)),
        )
        .returning(
            col(OutboxItem.id),
            col(OutboxItem.channel),
            col(OutboxItem.recipient),
            col(OutboxItem.subject),
            col(OutboxItem.body),
            col(OutboxItem.language),
            col(OutboxItem.template),
            col(OutboxItem.case_id),
            col(OutboxItem.party_id),
            col(OutboxItem.meta),
            col(OutboxItem.next_attempt_at),
        )
    )


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: the provider's report, or the error that left none."""

    item_id: uuid.UUID
    report: DeliveryReport | None
    error: str | None = None


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
    async with database.session() as session:
        await apply_outcomes(session, [Outcome(item_id, report, error)], broker=broker)


async def record_many(
    database: Database, outcomes: Sequence[Outcome], *, broker: Broker | None = None
) -> list[Outcome]:
    """Write several outcomes in one transaction, each as :func:`record` writes it; returns
    those that could not be written.

    If that transaction fails, each outcome is written in one of its own, so that one which
    cannot be written holds up none of the others; unless written later, that one's row
    stays claimed, and is sent again once the claim expires.
    """
    try:
        async with database.session() as session:
            await apply_outcomes(session, outcomes, broker=broker)
        return []
    except Exception as failure:
        if len(outcomes) == 1:
            log.error(
                "recording delivery %s failed (%s)", outcomes[0].item_id, type(failure).__name__
            )
            return list(outcomes)
    return [
        unwritten
        for outcome in outcomes
        for unwritten in await record_many(database, [outcome], broker=broker)
    ]


async def apply_outcomes(
    session: AsyncSession, outcomes: Sequence[Outcome], *, broker: Broker | None
) -> None:
    """Write ``outcomes`` in ``session``: the outbox rows with a statement per kind of
    change, then, one by one, the rows that have more to update (a message, a notice, a
    fallback). The rows of the message and the notice are read in advance, all at once."""
    now = utcnow()
    connection = await session.connection()
    ids = {"ids": [outcome.item_id for outcome in outcomes]}
    current = {row.id: row for row in (await connection.execute(CURRENT, ids)).all()}
    changes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    more: list[uuid.UUID] = []
    failed_now: set[uuid.UUID] = set()  # not those a status callback failed already
    for outcome in outcomes:
        row = current.get(outcome.item_id)
        if row is None:
            continue
        change = outcome_columns(row.status, row.attempts, outcome, now)
        changes.setdefault(tuple(sorted(change)), []).append({"row_id": row.id, **change})
        status = change.get("status", row.status)
        if status == "permanent-failure" and row.status != "permanent-failure":
            failed_now.add(row.id)
        if row.message_id or row.notice_id or status == "permanent-failure":
            more.append(row.id)
    for columns, values in changes.items():
        if connection.dialect.name == "postgresql":
            arrays = {name: [value[name] for value in values] for name in ("row_id", *columns)}
            await connection.execute(outcome_arrays_statement(columns), arrays)
        else:
            await connection.execute(outcome_statement(columns), values)
    if not more:
        return
    items = (await session.exec(select(OutboxItem).where(col(OutboxItem.id).in_(more)))).all()
    message_ids = [i.message_id for i in items if i.message_id is not None]
    notice_ids = [i.notice_id for i in items if i.notice_id is not None]
    if message_ids:
        await session.exec(select(Message).where(col(Message.id).in_(message_ids)))
    if notice_ids:
        await session.exec(select(Notice).where(col(Notice.id).in_(notice_ids)))
    for item in sorted(items, key=lambda i: more.index(i.id)):
        await show_on_message(session, item)
        if item.id in failed_now:
            await fall_back(session, item, broker=broker)


# What the outcome of an attempt depends on, of the rows ``ids``.
CURRENT = sa.select(
    col(OutboxItem.id),
    col(OutboxItem.status),
    col(OutboxItem.attempts),
    col(OutboxItem.message_id),
    col(OutboxItem.notice_id),
).where(col(OutboxItem.id).in_(bindparam("ids", expanding=True)))


@functools.cache
def outcome_statement(columns: tuple[str, ...]) -> sa.Update:
    """The UPDATE of ``columns`` of the outbox row ``row_id`` (made once per set of columns)."""
    return (
        update(OutboxItem)
        .where(col(OutboxItem.id) == bindparam("row_id"))
        .values({name: bindparam(name) for name in columns})
    )


# The outbox columns an outcome changes, as PostgreSQL array types (see below).
OUTCOME_COLUMN_TYPES = {
    "row_id": "uuid",
    "attempts": "integer",
    "claimed_until": "timestamptz",
    "updated_at": "timestamptz",
    "next_attempt_at": "timestamptz",
    "status": "text",
    "provider": "text",
    "provider_id": "text",
    "last_error": "text",
}


@functools.cache
def outcome_arrays_statement(columns: tuple[str, ...]) -> sa.TextClause:
    """On PostgreSQL, the UPDATE of ``columns`` of many outbox rows at once, from an array
    per column (and ``row_id``): one statement a batch, where a statement per row cost the
    database more than the updates themselves. The names come from OUTCOME_COLUMN_TYPES."""
    names = ("row_id", *columns)
    arrays = ", ".join(f"CAST(:{name} AS {OUTCOME_COLUMN_TYPES[name]}[])" for name in names)
    assignments = ", ".join(f"{name} = v.{name}" for name in columns)
    return sa.text(
        f"UPDATE outbox SET {assignments} FROM unnest({arrays}) AS v({', '.join(names)}) "  # noqa: S608
        "WHERE outbox.id = v.row_id"
    )


def outcome_columns(
    status: str, attempts: int, outcome: Outcome, now: dt.datetime
) -> dict[str, Any]:
    """The columns of an outbox row that ``outcome`` changes, with their new values."""
    change: dict[str, Any] = {"attempts": attempts + 1, "claimed_until": None, "updated_at": now}
    report = outcome.report
    if report is not None:
        # A callback, a bounce or a posted letter may have written the final status while
        # the send was under way: that one stands.
        if status == "sending":
            change["status"] = report.status
            change["last_error"] = report.detail
        change["provider"] = report.provider
        change["provider_id"] = report.provider_id
    elif attempts + 1 >= MAX_ATTEMPTS:
        change["status"] = "technical-failure"
        change["last_error"] = outcome.error
    else:
        change["status"] = "sending"
        change["last_error"] = outcome.error
        change["next_attempt_at"] = now + backoff(attempts + 1)
    return change


async def show_on_message(session: AsyncSession, item: OutboxItem) -> None:
    """Copy the delivery's status onto its message, where the case's thread shows it, and
    onto its notice (which falls back by its own rules when it bounced, and whose agency is
    told by webhook)."""
    if item.message_id is not None:
        message = await session.get(Message, item.message_id)
        if message is not None:
            message.delivery_status = item.status
            if item.status == "delivered":
                # After a bounce the next channel delivered it: the thread names that one.
                message.channel = item.channel
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


async def release(
    database: Database, item_ids: Sequence[uuid.UUID], *, claimed_until: dt.datetime
) -> None:
    """Give up this worker's claim (the one lasting until ``claimed_until``) on rows it did
    not send, so that any worker takes them at once; a row never tried is ``pending``
    again. A row claimed by another worker since, once this claim ran out, stays theirs."""
    if not item_ids:
        return
    async with database.session() as session:
        connection = await session.connection()
        await connection.execute(
            update(OutboxItem)
            .where(col(OutboxItem.id).in_(item_ids))
            .where(col(OutboxItem.claimed_until) == claimed_until)
            .values(
                claimed_until=None,
                status=case((col(OutboxItem.attempts) == 0, "pending"), else_=OutboxItem.status),
                updated_at=utcnow(),
            )
        )


async def attempt(adapters: AdapterRegistry, message: Outbound) -> Outcome:
    """Hand ``message`` to its channel's adapter; what came of it."""
    adapter = adapters.get(message.channel)
    if adapter is None:
        detail = f"no adapter for channel {message.channel}"
        return Outcome(message.id, DeliveryReport("permanent-failure", "none", detail=detail))
    try:
        report = await adapter.send(message)
    except TemporaryFailure as failure:
        return Outcome(message.id, None, str(failure)[:1000])
    except Exception as failure:
        log.warning(
            "delivery %s via %s failed: %s", message.id, message.channel, type(failure).__name__
        )
        return Outcome(message.id, None, type(failure).__name__)
    return Outcome(message.id, report)


@runtime_checkable
class Pooling(Protocol):
    """An adapter that keeps connections open between sends (the SMTP adapter)."""

    async def close(self) -> None:
        """End the connections left open."""
        ...


@runtime_checkable
class Preparing(Protocol):
    """An adapter that can do a send's own work (writing the mail) ahead of the send."""

    def prepare(self, message: Outbound) -> None:
        """Get ``message`` ready for :meth:`send`, without I/O."""
        ...


@dataclass(frozen=True)
class Claimed:
    """A message to send, the end of its claim, and the moment to start sending it by."""

    message: Outbound
    until: dt.datetime
    start_by: float  # time.monotonic()


class Round:
    """One call of :func:`deliver_once`: claim, send, record, as a pipeline.

    Rows are claimed in chunks, the next one when half of the last has been taken up, so
    sends never wait for a claim. Each channel has up to ``concurrency`` senders, each
    sending one message after another from the channel's queue. Outcomes are recorded by
    one task, in batches of whatever finished meanwhile, so that a transaction's cost is
    shared. A send starts only while fewer than ``unrecorded_at_most`` messages (by default
    ``UNRECORDED_PER_SEND * concurrency``) are handed over and not yet recorded: the most that
    a crash can make go twice.
    """

    def __init__(
        self,
        database: Database,
        adapters: AdapterRegistry,
        *,
        broker: Broker | None,
        concurrency: int,
        stop: asyncio.Event,
        grace_seconds: float,
        unrecorded_at_most: int | None = None,
    ) -> None:
        self.database = database
        self.adapters = adapters
        self.broker = broker
        self.concurrency = concurrency
        self.stop = stop
        self.grace_seconds = grace_seconds
        self.queues: dict[str, collections.deque[Claimed]] = {}
        self.unsent: list[Claimed] = []
        self.senders: collections.Counter[str] = collections.Counter()
        self.tasks: set[asyncio.Task[None]] = set()
        self.unrecorded = asyncio.Semaphore(unrecorded_at_most or UNRECORDED_PER_SEND * concurrency)
        self.outcomes: list[Outcome] = []
        self.outcome_ready = asyncio.Event()
        self.progress = asyncio.Event()
        self.queued = 0  # claimed, and not yet taken up by a sender
        self.taken: set[uuid.UUID] = set()  # taken up by a sender
        self.claims: dict[uuid.UUID, dt.datetime] = {}  # the end of each one's claim
        self.attempted = 0
        self.drained = False
        self.closing = False
        # An outcome could not be written (the database went away): every send from then on
        # would be one more that goes twice, so the round starts none.
        self.halted = False

    @property
    def stopping(self) -> bool:
        return self.halted or self.stop.is_set()

    async def run(self, limit: int, claim_seconds: float) -> int:
        watcher = asyncio.create_task(self.watch_stop())
        recorder = asyncio.create_task(self.record_outcomes())
        try:
            await self.claim(limit, claim_seconds)
        finally:
            try:
                while self.tasks:
                    await asyncio.wait(self.tasks)
            finally:
                watcher.cancel()
                self.closing = True
                self.outcome_ready.set()
                await recorder
                unsent = [*self.unsent, *(c for queue in self.queues.values() for c in queue)]
                for until in {claimed.until for claimed in unsent}:
                    ids = [c.message.id for c in unsent if c.until == until]
                    await release(self.database, ids, claimed_until=until)
        return self.attempted

    async def claim(self, limit: int, claim_seconds: float) -> None:
        chunk = min(limit, max(CLAIM_CHUNK, CLAIM_PER_SEND * self.concurrency))
        claimed = 0
        ends = time.monotonic() + ROUND_SECONDS
        while claimed < limit and not self.stopping:
            if claimed and time.monotonic() > ends:
                return
            while self.queued > chunk // 2 and not self.stopping:
                self.progress.clear()
                await self.progress.wait()
            if self.stopping:
                return
            wanted = min(chunk, limit - claimed)
            now, start_by = utcnow(), time.monotonic() + claim_seconds * SEND_WITHIN_CLAIM
            batch = await claim_due(
                self.database, limit=wanted, claim_seconds=claim_seconds, now=now
            )
            until = now + dt.timedelta(seconds=claim_seconds)
            claimed += len(batch)
            self.queued += len(batch)
            for message in batch:
                self.queues.setdefault(message.channel, collections.deque()).append(
                    Claimed(message, until, start_by)
                )
            self.spawn(self.prepare(batch))
            for channel, queue in self.queues.items():
                while self.senders[channel] < min(self.concurrency, len(queue)):
                    self.senders[channel] += 1
                    self.spawn(self.send_from(channel, queue))
            if len(batch) < wanted:
                self.drained = True
                return

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def prepare(self, batch: Sequence[Outbound]) -> None:
        """Let the adapters that can write their messages ahead of sending do so, one at a
        time between the event loop's other work: mostly while the senders wait for the
        provider's answers, which takes that work off the senders' path."""
        preparing: dict[str, Preparing | None] = {}
        for message in batch:
            if message.channel not in preparing:
                adapter = self.adapters.get(message.channel)
                preparing[message.channel] = adapter if isinstance(adapter, Preparing) else None
            writer = preparing[message.channel]
            if writer is None or message.id in self.taken or self.stopping:
                continue
            writer.prepare(message)
            await asyncio.sleep(0)

    async def send_from(self, channel: str, queue: collections.deque[Claimed]) -> None:
        """Send the channel's messages one after another until none is left or a stop.

        A message whose claim has nearly run out while it waited (a slow provider) is not
        sent: another worker may take it once the claim has expired, and both would send."""
        try:
            while queue and not self.stopping:
                await self.unrecorded.acquire()
                if not queue or self.stopping:
                    self.unrecorded.release()
                    return
                claimed = queue.popleft()
                self.taken.add(claimed.message.id)
                self.claims[claimed.message.id] = claimed.until
                self.queued -= 1
                self.progress.set()
                if time.monotonic() > claimed.start_by:
                    self.unrecorded.release()
                    self.unsent.append(claimed)
                    continue
                message = claimed.message
                self.attempted += 1
                try:
                    outcome = await attempt(self.adapters, message)
                except asyncio.CancelledError:
                    # Cut off by the end of the grace period: whether the provider took it
                    # is unknown, so it is tried again after the backoff, like any temporary
                    # failure.
                    self.add(Outcome(message.id, None, "cut off: the worker was stopping"))
                    raise
                self.add(outcome)
        finally:
            self.senders[channel] -= 1

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        self.outcome_ready.set()

    async def record_outcomes(self) -> None:
        while True:
            await self.outcome_ready.wait()
            self.outcome_ready.clear()
            # A moment for more outcomes to join, while sends are finishing anyway: fewer,
            # larger transactions.
            waited = 0
            while len(self.outcomes) < 2 * self.concurrency and waited < 4 and not self.closing:
                await asyncio.sleep(RECORD_LINGER_SECONDS / 4)
                waited += 1
            while self.outcomes:
                batch, self.outcomes = self.outcomes, []
                try:
                    await self.record(batch)
                finally:
                    for _ in batch:
                        self.unrecorded.release()
            if self.closing:
                return

    async def record(self, batch: list[Outcome]) -> None:
        """Write the batch's outcomes. Those that cannot be written (the database is away)
        stop the round's sends, and are tried again while their claims last: a row whose
        outcome is never written is sent again once its claim has run out, so a database
        restart would otherwise send twice what was under way."""
        unwritten = await record_many(self.database, batch, broker=self.broker)
        pause = RECORD_RETRY_SECONDS
        while unwritten:
            # Every send from now on would be one more that goes twice: the round starts none.
            self.halted = True
            self.progress.set()  # the claimer stops waiting
            latest = utcnow() + dt.timedelta(seconds=pause + RECORD_RETRY_SECONDS)
            unwritten = [o for o in unwritten if self.claims.get(o.item_id, latest) > latest]
            if not unwritten:
                break
            await asyncio.sleep(pause)
            pause = min(2 * pause, 2.0)
            unwritten = await record_many(self.database, unwritten, broker=self.broker)

    async def watch_stop(self) -> None:
        await self.stop.wait()
        self.progress.set()  # the claimer stops waiting for sends to take up its rows
        await asyncio.sleep(self.grace_seconds)
        for task in list(self.tasks):
            task.cancel()


async def deliver_once(
    database: Database,
    adapters: AdapterRegistry,
    *,
    limit: int = 20,
    broker: Broker | None = None,
    claim_seconds: float = CLAIM_SECONDS,
    concurrency: int = 1,
    stop: asyncio.Event | None = None,
    grace_seconds: float = GRACE_SECONDS,
    unrecorded_at_most: int | None = None,
) -> int:
    """Send up to ``limit`` due rows, ``concurrency`` at a time per channel; returns how many
    were attempted. The session is closed during every send (:class:`Round` has the how).

    When ``stop`` is set, nothing more starts: the sends under way get ``grace_seconds`` to
    finish, a send still running after that is cut off and retried later (as a temporary
    failure), and rows claimed but not yet sent are released for another worker at once.
    Adapters that keep connections open close them when the outbox is empty or on a stop.
    ``unrecorded_at_most`` bounds the messages handed over and not yet recorded (see
    :class:`Round`).
    """
    stop = stop or asyncio.Event()
    delivery = Round(
        database,
        adapters,
        broker=broker,
        concurrency=max(1, concurrency),
        stop=stop,
        grace_seconds=grace_seconds,
        unrecorded_at_most=unrecorded_at_most,
    )
    try:
        return await delivery.run(limit, claim_seconds)
    finally:
        if delivery.drained or stop.is_set():
            await close_connections(adapters)


async def close_connections(adapters: AdapterRegistry) -> None:
    """Close the connections adapters keep open between sends (see :class:`Pooling`)."""
    for channel in adapters.channels:
        adapter = adapters.get(channel)
        if isinstance(adapter, Pooling):
            await adapter.close()


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
    # Sends at once per channel; a round takes ROUND_ROWS_PER_SEND rows per send at most.
    concurrency: int = CONCURRENCY
    # Messages handed over and not yet recorded, at most (None: UNRECORDED_PER_SEND a send).
    unrecorded_at_most: int | None = None
    # When stopped: how long the sends under way may take to finish.
    grace_seconds: float = GRACE_SECONDS
    # Set by ``run``'s stop: the round under way stops starting sends (see deliver_once).
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def run_once(self) -> int:
        fired = await fire_due_timers(
            self.database, catalog=self.catalog, broker=self.broker, timezone=self.timezone
        )
        fired += await release_held_notices(self.database)
        fired += await escalate_unread_notices(self.database, timezone=self.timezone)
        delivered = await deliver_once(
            self.database,
            self.adapters,
            broker=self.broker,
            claim_seconds=self.claim_seconds,
            limit=ROUND_ROWS_PER_SEND * self.concurrency,
            concurrency=self.concurrency,
            stop=self.stopping,
            grace_seconds=self.grace_seconds,
            unrecorded_at_most=self.unrecorded_at_most,
        )
        delivered += await deliver_webhooks(self.database)
        fired += await retention_step(self.database, self.catalog, self.document_store)
        fired += await roll_up_insights(self.database, catalog=self.catalog, timezone=self.timezone)
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
        """Rounds until ``stop`` is set, then a graceful end: sends under way finish (within
        ``grace_seconds``), what was claimed and not sent is released for other workers, and
        open connections to providers are closed."""
        self.stopping = stop
        try:
            await self._rounds(stop)
        finally:
            await close_connections(self.adapters)

    async def _rounds(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                busy = await self.run_once()
            except Exception:
                log.exception("worker round failed; retrying")
                busy = 0
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.interval)
