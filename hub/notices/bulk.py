"""Routing notices in batches: the same decisions as ``route_notice``, made for thousands of
rows with a handful of statements.

On PostgreSQL, a batch whose templates are all plain text with ``{{ name }}`` placeholders
is decided and written inside the database, set-based (:mod:`hub.notices.bulk_postgres`).
Otherwise (SQLite, or a template that needs Jinja2) :func:`gather` asks the database, per
batch, for the parties, their usable addresses, their consents in force, today's counts
towards the daily cap and the notices that exist already; :func:`decide` decides per row in
memory with the pure parts of :mod:`hub.notices.service` (channel order, template choice,
quiet hours, the portal alert); and :func:`write_plan` writes the notices, outbox rows and
quiet-hours timers as sets (``COPY`` on PostgreSQL, multi-row inserts elsewhere).

The outcome per row is the one the single-notice API gives (``tests/notices/test_bulk.py``
holds both paths to that): a row the API would refuse with 422 is rejected with the same
message.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple

import asyncpg
import sqlalchemy as sa
from asyncpg.pgproto.pgproto import UUID as PgUUID
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.clock import local_date, start_of_local_day
from hub.errors import InvalidInput
from hub.messages.service import FALLBACK_ORDER, Route, case_context, channel_order
from hub.models import (
    Agency,
    Case,
    Consent,
    ConsentTopic,
    DigitalAddress,
    Notice,
    NoticeTemplate,
    OutboxItem,
    Party,
    Timer,
)
from hub.notices.bulk_postgres import (
    Choice,
    choices,
    decide_in_database,
    stage_record,
    write_decided,
)
from hub.notices.schemas import NoticeIn
from hub.notices.service import (
    ALERT_SUBJECT,
    ALERT_TEXT,
    DAILY_CAP,
    OUTBOX_TEMPLATE,
    QUIET_HOURS_TIMER,
    compiled_for,
    default_dedupe_key,
    fill,
    notice_url,
    quiet_until,
    templates_named,
)
from hub.notices.templates import LANGUAGES, Compiled, Rendered
from hub.parties.service import check_identifier
from journeys.catalog import Catalog

NOTICE_TABLE: sa.Table = Notice.__table__  # type: ignore[attr-defined]
OUTBOX_TABLE: sa.Table = OutboxItem.__table__  # type: ignore[attr-defined]
TIMER_TABLE: sa.Table = Timer.__table__  # type: ignore[attr-defined]
ADDRESS_KINDS = {"email": "email", "sms": "phone"}


@dataclass(slots=True)
class Recipient:
    """What routing needs of a party: read once per batch, as plain values."""

    id: uuid.UUID
    name: str
    preferred_channel: str
    language: str
    needs: Sequence[str]
    postal_address: str | None
    # The first verified, not opted-out address per channel (email, sms).
    addresses: dict[str, str] = field(default_factory=dict)

    def address(self, channel: str) -> str | None:
        if channel == "letter":
            return self.postal_address
        return self.addresses.get(channel)

    def route(self) -> Route | None:
        """As ``hub.messages.service.route``: the first channel with a usable address."""
        for channel in _channel_order(self.needs, self.preferred_channel):
            recipient = self.address(channel)
            if recipient:
                return Route(channel, recipient)
        return None


# The same few (needs, preferred channel) pairs come back on every row.
_channel_order = lru_cache(maxsize=256)(channel_order)


class TopicRef(NamedTuple):
    id: int
    code: str


@dataclass
class JobContext:
    """What stays the same over a job's batches: the agency, its topics and templates as
    first looked up (a template edited during a job is used from the next job on)."""

    agency: Agency
    catalog: Catalog
    timezone: str
    base_url: str
    job_id: uuid.UUID | None = None
    topics: dict[str, TopicRef | None] = field(default_factory=dict)
    templates: dict[str, dict[tuple[str, str], NoticeTemplate]] = field(default_factory=dict)
    compiled: dict[tuple[str, str, str], Compiled] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Read once: an ORM attribute costs more than a row's whole decision elsewhere.
        self.agency_id: str = self.agency.id
        self.agency_name: str = self.agency.name
        self.journeys: list[str] = [journey.id for journey in self.catalog.all()]

    async def topic(self, session: AsyncSession, code: str) -> TopicRef | None:
        if code not in self.topics:
            query = select(ConsentTopic).where(
                ConsentTopic.agency_id == self.agency.id, ConsentTopic.code == code
            )
            found = (await session.exec(query)).first()
            self.topics[code] = TopicRef(found.id or 0, found.code) if found else None
        return self.topics[code]

    def fill(self, code: str, channel: str, language: str, values: Mapping[str, Any]) -> Rendered:
        """``render_for`` with the template's choice and parse kept for the whole job."""
        key = (code, channel, language)
        compiled = self.compiled.get(key)
        if compiled is None:
            compiled = self.compiled[key] = compiled_for(self.templates[code], channel, language)
        return fill(compiled, channel, values)

    async def templates_of(
        self, session: AsyncSession, code: str
    ) -> dict[tuple[str, str], NoticeTemplate]:
        if code not in self.templates:
            self.templates[code] = await templates_named(
                session, agency_id=self.agency.id, code=code
            )
        return self.templates[code]


@dataclass(frozen=True)
class BatchRow:
    """A row of a bulk file that parsed: where it was, as it was, and what it asks."""

    row: int
    content: str
    notice: NoticeIn


@dataclass
class BatchOutcome:
    accepted: int = 0
    not_sent: int = 0
    duplicates: int = 0
    # (row, error, content)
    rejections: list[tuple[int, str, str]] = field(default_factory=list)


@dataclass
class _Writes:
    notices: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    timers: list[dict[str, Any]] = field(default_factory=list)


def _chunks(values: Sequence[Any], size: int = 5000) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


async def _recipients(
    connection: AsyncConnection, rows: Sequence[BatchRow]
) -> tuple[dict[str, Recipient], dict[str, Recipient]]:
    """The batch's parties by BSN and by KvK number, with their usable addresses."""
    bsns = sorted({r.notice.bsn for r in rows if r.notice.bsn})
    kvks = sorted({r.notice.kvk_number for r in rows if r.notice.kvk_number})
    if connection.dialect.name == "postgresql":
        return await _recipients_postgres(connection, bsns, kvks)
    columns = (
        col(Party.id),
        col(Party.bsn),
        col(Party.kvk_number),
        col(Party.name),
        col(Party.preferred_channel),
        col(Party.preferred_language),
        col(Party.needs),
        col(Party.postal_address),
    )
    found: list[Any] = []
    for identifiers, column in ((bsns, col(Party.bsn)), (kvks, col(Party.kvk_number))):
        for chunk in _chunks(identifiers):
            found.extend(
                (await connection.execute(sa.select(*columns).where(column.in_(chunk)))).all()
            )
    by_id = {
        row.id: Recipient(
            id=row.id,
            name=row.name,
            preferred_channel=row.preferred_channel,
            language=row.preferred_language if row.preferred_language in LANGUAGES else "nl",
            needs=tuple(row.needs or ()),
            postal_address=row.postal_address,
        )
        for row in found
    }
    ids = list(by_id)
    for chunk in _chunks(ids):
        query = (
            sa.select(
                col(DigitalAddress.party_id), col(DigitalAddress.kind), col(DigitalAddress.value)
            )
            .where(
                col(DigitalAddress.party_id).in_(chunk),
                col(DigitalAddress.verified_at).is_not(None),
                col(DigitalAddress.opted_out_at).is_(None),
            )
            .order_by(col(DigitalAddress.created_at).desc())
        )
        # Newest first, so the oldest — the one ``address_for`` picks — is written last.
        for party_id, kind, value in (await connection.execute(query)).all():
            channel = "email" if kind == "email" else "sms"
            by_id[party_id].addresses[channel] = value
    by_bsn = {row.bsn: by_id[row.id] for row in found if row.bsn}
    by_kvk = {row.kvk_number: by_id[row.id] for row in found if row.kvk_number}
    return by_bsn, by_kvk


async def _recipients_postgres(
    connection: AsyncConnection, bsns: list[str], kvks: list[str]
) -> tuple[dict[str, Recipient], dict[str, Recipient]]:
    """As ``_recipients``, in one query with array parameters."""
    raw = await _driver(connection)
    found = await raw.fetch(
        """
        SELECT p.id, p.bsn, p.kvk_number, p.name, p.preferred_channel, p.preferred_language,
               p.needs, p.postal_address,
               (SELECT a.value FROM digital_address a
                 WHERE a.party_id = p.id AND a.kind = 'email'
                   AND a.verified_at IS NOT NULL AND a.opted_out_at IS NULL
                 ORDER BY a.created_at LIMIT 1) AS email,
               (SELECT a.value FROM digital_address a
                 WHERE a.party_id = p.id AND a.kind = 'phone'
                   AND a.verified_at IS NOT NULL AND a.opted_out_at IS NULL
                 ORDER BY a.created_at LIMIT 1) AS sms
          FROM party p
         WHERE p.bsn = ANY($1::varchar[]) OR p.kvk_number = ANY($2::varchar[])
        """,
        bsns,
        kvks,
    )
    by_bsn: dict[str, Recipient] = {}
    by_kvk: dict[str, Recipient] = {}
    for party_id, bsn, kvk, name, channel, language, needs, postal, email, sms in found:
        addresses = {}
        if email is not None:
            addresses["email"] = email
        if sms is not None:
            addresses["sms"] = sms
        recipient = Recipient(
            party_id,
            name,
            channel,
            language if language in LANGUAGES else "nl",
            tuple(json.loads(needs) if isinstance(needs, str) else needs or ()),
            postal,
            addresses,
        )
        if bsn:
            by_bsn[bsn] = recipient
        if kvk:
            by_kvk[kvk] = recipient
    return by_bsn, by_kvk


async def _driver(connection: AsyncConnection) -> Any:
    """The asyncpg connection under SQLAlchemy's, in the same transaction."""
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    return raw


async def _consents(
    connection: AsyncConnection, party_ids: Sequence[uuid.UUID], topic_ids: set[int]
) -> dict[tuple[uuid.UUID, int], bool]:
    """The answer in force per (party, topic): the latest one, as ``consent_in_force``."""
    answers: dict[tuple[uuid.UUID, int], bool] = {}
    if not topic_ids:
        return answers
    if connection.dialect.name == "postgresql":
        found = await (await _driver(connection)).fetch(
            """
            SELECT DISTINCT ON (party_id, topic_id) party_id, topic_id, granted
              FROM consent
             WHERE party_id = ANY($1::uuid[]) AND topic_id = ANY($2::int[])
             ORDER BY party_id, topic_id, recorded_at DESC, id DESC
            """,
            list(party_ids),
            sorted(topic_ids),
        )
        return {(party_id, topic_id): granted for party_id, topic_id, granted in found}
    for chunk in _chunks(party_ids):
        query = (
            sa.select(col(Consent.party_id), col(Consent.topic_id), col(Consent.granted))
            .where(col(Consent.party_id).in_(chunk), col(Consent.topic_id).in_(topic_ids))
            .order_by(col(Consent.recorded_at), col(Consent.id))
        )
        for party_id, topic_id, granted in (await connection.execute(query)).all():
            answers[(party_id, topic_id)] = granted
    return answers


async def _sent_today(
    connection: AsyncConnection,
    party_ids: Sequence[uuid.UUID],
    *,
    agency_id: str,
    now: dt.datetime,
    timezone: str,
) -> dict[uuid.UUID, int]:
    """Per party, the notices of the agency that count towards today's cap (``sent_today``)."""
    since = start_of_local_day(local_date(now, timezone), timezone)
    counts: dict[uuid.UUID, int] = {}
    if connection.dialect.name == "postgresql":
        # A count per party through the party's index: asked as one filter over the array,
        # a planner without statistics on a fresh table (a job's first minutes) scans every
        # notice of the day once per batch.
        found = await (await _driver(connection)).fetch(
            """
            SELECT wanted.id AS party_id,
                   (SELECT count(*) FROM notice
                     WHERE notice.party_id = wanted.id AND notice.agency_id = $1
                       AND notice.created_at >= $3 AND notice.status <> 'not-sent') AS sent
              FROM unnest($2::uuid[]) AS wanted(id)
            """,
            agency_id,
            list(party_ids),
            since,
        )
        return {row["party_id"]: row["sent"] for row in found if row["sent"]}
    for chunk in _chunks(party_ids):
        query = (
            sa.select(col(Notice.party_id), func.count())
            .where(
                col(Notice.agency_id) == agency_id,
                col(Notice.party_id).in_(chunk),
                col(Notice.created_at) >= since,
                col(Notice.status) != "not-sent",
            )
            .group_by(col(Notice.party_id))
        )
        for party_id, count in (await connection.execute(query)).all():
            if party_id is not None:
                counts[party_id] = count
    return counts


async def _existing_keys(
    connection: AsyncConnection, agency_id: str, keys: Sequence[str]
) -> set[str]:
    existing: set[str] = set()
    if connection.dialect.name == "postgresql":
        found = await (await _driver(connection)).fetch(
            "SELECT dedupe_key FROM notice "
            "WHERE agency_id = $1 AND dedupe_key = ANY($2::varchar[])",
            agency_id,
            list(keys),
        )
        return {row["dedupe_key"] for row in found}
    for chunk in _chunks(keys):
        query = sa.select(col(Notice.dedupe_key)).where(
            col(Notice.agency_id) == agency_id, col(Notice.dedupe_key).in_(chunk)
        )
        existing.update((await connection.execute(query)).scalars().all())
    return existing


async def _cases(session: AsyncSession, rows: Sequence[BatchRow]) -> dict[uuid.UUID, Case]:
    ids = sorted({r.notice.case_id for r in rows if r.notice.case_id}, key=str)
    if not ids:
        return {}
    found = (await session.exec(select(Case).where(col(Case.id).in_(ids)))).all()
    return {case.id: case for case in found}


# Version 4 (random) UUIDs from the system's random source, as ``uuid.uuid4`` makes them,
# but read from it 4,096 at a time and built by asyncpg's C type: a bulk job makes two a row,
# and a call into the random source each was the largest single cost of deciding a row.
_V4_CLEAR = ((1 << 128) - 1) ^ (0xF << 76) ^ (0x3 << 62)
_V4_SET = (0x4 << 76) | (0x2 << 62)
_ID_BATCH = 4096
_random = threading.local()


def new_id() -> uuid.UUID:
    pool: list[bytes] | None = getattr(_random, "pool", None)
    if not pool:
        block = os.urandom(16 * _ID_BATCH)
        pool = _random.pool = [block[i : i + 16] for i in range(0, len(block), 16)]
    value = int.from_bytes(pool.pop(), "big") & _V4_CLEAR | _V4_SET
    made: uuid.UUID = PgUUID(value.to_bytes(16, "big"))
    return made


def _outbox_row(
    *,
    notice: Mapping[str, Any],
    channel: str,
    recipient: str,
    subject: str,
    body: str,
    language: str,
    meta: dict[str, Any],
    now: dt.datetime,
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "case_id": notice["case_id"],
        "party_id": notice["party_id"],
        "message_id": None,
        "notice_id": notice["id"],
        "channel": channel,
        "recipient": recipient,
        "template": OUTBOX_TEMPLATE,
        "language": language,
        "subject": subject,
        "body": body,
        "html": None,
        "meta": meta,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "claimed_until": None,
        "provider": None,
        "provider_id": None,
        "last_error": None,
        "created_at": now,
        "updated_at": now,
    }


@dataclass
class Gathered:
    """What the database said about a batch's rows: the rows to decide (with their party,
    topic and dedupe key), and the keys, consents, counts and cases they are decided by."""

    planned: list[tuple[BatchRow, Recipient, TopicRef, str]]
    existing: set[str]
    consents: dict[tuple[uuid.UUID, int], bool]
    counts: dict[uuid.UUID, int]
    cases: dict[uuid.UUID, Case]
    outcome: BatchOutcome


@dataclass
class Plan:
    """A batch decided: its counts so far and the rows to write."""

    outcome: BatchOutcome
    writes: _Writes

    def carried(self) -> Carry:
        """What this batch will add, for a batch decided before it is written."""
        sent: dict[uuid.UUID, int] = {}
        for notice in self.writes.notices:
            if notice["status"] != "not-sent":
                sent[notice["party_id"]] = sent.get(notice["party_id"], 0) + 1
        return Carry(sent=sent, keys={notice["dedupe_key"] for notice in self.writes.notices})


@dataclass
class Carry:
    """Notices of the batch before, decided but not yet in the database: the next batch
    counts them towards the daily cap and as made."""

    sent: dict[uuid.UUID, int] = field(default_factory=dict)
    keys: set[str] = field(default_factory=set)


async def route_batch(
    session: AsyncSession,
    context: JobContext,
    rows: Sequence[BatchRow],
    *,
    now: dt.datetime,
    in_database: bool = True,
) -> BatchOutcome:
    """Decide and write the notices of ``rows`` in the caller's transaction: on PostgreSQL
    in the database (:mod:`hub.notices.bulk_postgres`) when every template the rows use is
    plain and ``in_database`` allows it, else row by row here."""
    prepared = in_database and await prepare_batch(session, context, rows)
    return await route_prepared(session, context, rows, now=now, prepared=prepared)


async def prepare_batch(
    session: AsyncSession, context: JobContext, rows: Sequence[BatchRow]
) -> bool:
    """On PostgreSQL, decide ``rows`` in the session's temporary tables (nothing else is
    written, so a job may do this while the batch before is written); False when the rows
    must be routed here instead (another database, or a template that needs Jinja2)."""
    if (await session.connection()).dialect.name != "postgresql":
        return False
    found = await _plain_choices(session, context, rows)
    if found is None:
        return False
    await decide_in_database(
        session,
        [stage_record(item.row, item.notice) for item in rows],
        found,
        agency_id=context.agency_id,
        agency_name=context.agency_name,
        journeys=context.journeys,
        base_url=context.base_url,
    )
    return True


async def route_prepared(
    session: AsyncSession,
    context: JobContext,
    rows: Sequence[BatchRow],
    *,
    now: dt.datetime,
    prepared: bool,
) -> BatchOutcome:
    """Write ``rows``: as ``prepare_batch`` decided them, or (not ``prepared``) deciding
    them here."""
    if not prepared:
        gathered = await gather(session, context, rows, now=now)
        return await write_plan(session, decide(context, gathered, now=now))
    tally = await write_decided(
        session,
        agency_id=context.agency_id,
        job_id=context.job_id,
        timezone=context.timezone,
        now=now,
    )
    contents = {item.row: item.content for item in rows}
    return BatchOutcome(
        accepted=tally.accepted,
        not_sent=tally.not_sent,
        duplicates=tally.duplicates,
        rejections=[(row, error, contents[row]) for row, error in tally.rejections],
    )


async def _plain_choices(
    session: AsyncSession, context: JobContext, rows: Sequence[BatchRow]
) -> dict[tuple[str, str, str], Choice] | None:
    """The templates the rows name, if all are plain (see ``bulk_postgres.choices``)."""
    named = {}
    for code in sorted({item.notice.template for item in rows}):
        templates = await context.templates_of(session, code)
        if templates:
            named[code] = templates
    return choices(named)


async def gather(
    session: AsyncSession, context: JobContext, rows: Sequence[BatchRow], *, now: dt.datetime
) -> Gathered:
    """Look up, in a few queries, everything the rows are decided by; rows that cannot be
    sent at all (unknown party, topic, template, journey or case) are rejected here."""
    agency_id = context.agency_id
    outcome = BatchOutcome()
    connection = await session.connection()
    by_bsn, by_kvk = await _recipients(connection, rows)
    cases = await _cases(session, rows)
    planned: list[tuple[BatchRow, Recipient, TopicRef, str]] = []
    for item in rows:
        wanted = item.notice
        try:
            check_identifier(bsn=wanted.bsn, kvk_number=wanted.kvk_number)
            party = by_bsn.get(wanted.bsn) if wanted.bsn else by_kvk.get(wanted.kvk_number or "")
            if party is None:
                raise InvalidInput("No party is known by this identifier.")
            topic = await context.topic(session, wanted.topic)
            if topic is None:
                raise InvalidInput(f"Agency '{agency_id}' has no consent topic '{wanted.topic}'.")
            if wanted.journey_id is not None and not context.catalog.versions(wanted.journey_id):
                raise InvalidInput(f"There is no journey '{wanted.journey_id}'.")
            if wanted.case_id is not None:
                case = cases.get(wanted.case_id)
                if case is None or case.agency_id != agency_id or case.party_id != party.id:
                    raise InvalidInput("The case is not one of this agency's cases of this party.")
            if wanted.escalate_after_days is not None and not wanted.important:
                raise InvalidInput("Only an important notice can be escalated.")
            if not await context.templates_of(session, wanted.template):
                raise InvalidInput(
                    f"Agency '{agency_id}' has no notice template '{wanted.template}'."
                )
        except InvalidInput as refused:
            outcome.rejections.append((item.row, refused.detail, item.content))
            continue
        key = wanted.dedupe_key or default_dedupe_key(
            party_id=party.id,
            topic_code=topic.code,
            template_code=wanted.template,
            personalisation=wanted.personalisation,
        )
        planned.append((item, party, topic, key))

    party_ids = sorted({party.id for _, party, _, _ in planned}, key=str)
    return Gathered(
        planned=planned,
        existing=await _existing_keys(connection, agency_id, [key for *_, key in planned]),
        consents=await _consents(connection, party_ids, {t.id for _, _, t, _ in planned}),
        counts=await _sent_today(
            connection, party_ids, agency_id=agency_id, now=now, timezone=context.timezone
        ),
        cases=cases,
        outcome=outcome,
    )


def decide(
    context: JobContext, gathered: Gathered, *, now: dt.datetime, carry: Carry | None = None
) -> Plan:
    """Decide every gathered row (no database: a worker may run it in a thread while the
    batch before is written). ``carry`` is that batch, if it is not in the database yet."""
    outcome, writes = gathered.outcome, _Writes()
    existing, counts = gathered.existing, gathered.counts
    if carry is not None:
        existing |= carry.keys
        for party_id, sent in carry.sent.items():
            counts[party_id] = counts.get(party_id, 0) + sent
    for item, party, topic, key in gathered.planned:
        if key in existing:
            outcome.duplicates += 1
            continue
        try:
            status = _plan_row(
                context,
                item,
                party,
                topic,
                key,
                gathered.consents,
                counts,
                gathered.cases,
                writes,
                now,
            )
        except InvalidInput as refused:
            outcome.rejections.append((item.row, refused.detail, item.content))
            continue
        existing.add(key)  # the same notice twice in one batch is sent once
        if status == "not-sent":
            outcome.not_sent += 1
        else:
            outcome.accepted += 1
    return Plan(outcome=outcome, writes=writes)


async def write_plan(session: AsyncSession, plan: Plan) -> BatchOutcome:
    """Write a decided batch in the caller's transaction; its outcome, with notices someone
    else wrote meanwhile counted as duplicates."""
    outcome, writes = plan.outcome, plan.writes
    raced = await _write(await session.connection(), writes)
    if raced:
        # Another request made some of these notices between our look and our write: theirs
        # count, ours were not written (nor their deliveries).
        for notice in writes.notices:
            if notice["id"] in raced:
                outcome.duplicates += 1
                if notice["status"] == "not-sent":
                    outcome.not_sent -= 1
                else:
                    outcome.accepted -= 1
    return outcome


def _plan_row(
    context: JobContext,
    item: BatchRow,
    party: Recipient,
    topic: TopicRef,
    key: str,
    consents: Mapping[tuple[uuid.UUID, int], bool],
    counts: dict[uuid.UUID, int],
    cases: Mapping[uuid.UUID, Case],
    writes: _Writes,
    now: dt.datetime,
) -> str:
    """Decide one row as ``route_notice`` does and add its writes; returns its status.
    Raises InvalidInput (nothing added) when a template cannot be filled in."""
    agency_id, agency_name, wanted = context.agency_id, context.agency_name, item.notice
    language = party.language
    values = {"party_name": party.name, "agency_name": agency_name, **wanted.personalisation}
    preferred = party.preferred_channel
    target = (
        party.route()
        if preferred in FALLBACK_ORDER or "no_digital_contact" in party.needs
        else None
    )
    channel = target.channel if target else "portal"
    shown = context.fill(wanted.template, "portal", language, values)
    text = context.fill(wanted.template, channel, language, values) if target else shown
    notice: dict[str, Any] = {
        "id": new_id(),
        "agency_id": agency_id,
        "party_id": party.id,
        "topic_id": topic.id,
        "template_code": wanted.template,
        "personalisation": dict(wanted.personalisation),
        "journey_id": wanted.journey_id,
        "case_id": wanted.case_id,
        "important": wanted.important,
        "escalate_after_days": wanted.escalate_after_days,
        "dedupe_key": key,
        "status": "created",
        "reason": None,
        "channel": channel,
        "subject": shown.subject,
        "body": shown.body,
        "job_id": context.job_id,
        "job_row": item.row,
        "read_at": None,
        "escalated_at": None,
        "created_at": now,
        "updated_at": now,
    }
    writes.notices.append(notice)
    if not consents.get((party.id, topic.id), False):
        notice.update(status="not-sent", reason="no_consent", channel=None)
        return "not-sent"
    if counts.get(party.id, 0) >= DAILY_CAP:
        notice.update(status="not-sent", reason="daily_cap", channel=None)
        return "not-sent"
    counts[party.id] = counts.get(party.id, 0) + 1

    case = cases.get(wanted.case_id) if wanted.case_id else None
    meta = case_context(case, agency_name, party.name) if case is not None else {}
    meta.update(
        agency_id=agency_id,
        agency_name=agency_name,
        party_name=party.name,
        notice_id=str(notice["id"]),
    )
    if target is None:
        notice["status"] = "delivered"
        alert_to = party.address("email")
        if alert_to is not None and "no_digital_contact" not in party.needs:
            url = notice_url(context.base_url, notice["id"])
            writes.outbox.append(
                _outbox_row(
                    notice=notice,
                    channel="email",
                    recipient=alert_to,
                    subject=ALERT_SUBJECT[language].format(agency=agency_name),
                    body=ALERT_TEXT[language].format(
                        agency=agency_name, subject=notice["subject"], url=url
                    ),
                    language=language,
                    meta={**meta, "notice_role": "alert", "notice_url": url, "tried": ["email"]},
                    now=now,
                )
            )
        return "delivered"
    meta["tried"] = [target.channel]
    release_at = quiet_until(now, context.timezone) if target.channel == "sms" else None
    if release_at is not None:
        notice.update(status="created", reason="quiet_hours")
        writes.timers.append(
            {
                "id": new_id(),
                "case_id": notice["case_id"],
                "kind": QUIET_HOURS_TIMER,
                "due_at": release_at,
                "payload": {
                    "notice_id": str(notice["id"]),
                    "recipient": target.recipient,
                    "subject": text.subject,
                    "body": text.body,
                    "language": language,
                    "context": meta,
                },
                "fired_at": None,
                "cancelled_at": None,
                "created_at": now,
            }
        )
        return "created"
    notice["status"] = "sending"
    writes.outbox.append(
        _outbox_row(
            notice=notice,
            channel=target.channel,
            recipient=target.recipient,
            subject=text.subject,
            body=text.body,
            language=language,
            meta=meta,
            now=now,
        )
    )
    return "sending"


# Built once: ``json.dumps`` with options makes an encoder on every call.
_json_text = json.JSONEncoder(separators=(",", ":"), default=str).encode


async def _write(connection: AsyncConnection, writes: _Writes) -> set[uuid.UUID]:
    """Write the batch; returns the ids of notices not written because the same notice was
    written by someone else meanwhile (their deliveries are left out too)."""
    if not writes.notices:
        return set()
    if connection.dialect.name == "postgresql":
        return await _copy_postgres(connection, writes)
    statement = sqlite_insert(NOTICE_TABLE).on_conflict_do_nothing(
        index_elements=["agency_id", "dedupe_key"]
    )
    await connection.execute(statement, writes.notices)
    ids = [notice["id"] for notice in writes.notices]
    written: set[uuid.UUID] = set()
    for chunk in _chunks(ids):
        found = await connection.execute(sa.select(col(Notice.id)).where(col(Notice.id).in_(chunk)))
        written.update(found.scalars().all())
    raced = set(ids) - written
    outbox = [row for row in writes.outbox if row["notice_id"] not in raced]
    timers = [row for row in writes.timers if row["payload"]["notice_id"] not in map(str, raced)]
    if outbox:
        await connection.execute(sa.insert(OUTBOX_TABLE), outbox)
    if timers:
        await connection.execute(sa.insert(TIMER_TABLE), timers)
    return raced


async def _copy_postgres(connection: AsyncConnection, writes: _Writes) -> set[uuid.UUID]:
    """COPY the notices straight into ``notice`` — the batch's keys were looked up, so they
    are new unless someone wrote the same notice meanwhile. If so (a unique violation), the
    batch goes again through a temporary table and ``INSERT … ON CONFLICT DO NOTHING``.
    Then COPY the deliveries and timers of the notices that went in."""
    raw = await _driver(connection)
    raced: set[uuid.UUID] = set()
    await raw.execute("SAVEPOINT notice_batch")
    try:
        await _copy(raw, "notice", NOTICE_TABLE, writes.notices)
    except asyncpg.UniqueViolationError:
        await raw.execute("ROLLBACK TO SAVEPOINT notice_batch")
        await raw.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS notice_batch "
            "(LIKE notice INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        await _copy(raw, "notice_batch", NOTICE_TABLE, writes.notices)
        inserted = await raw.fetch(
            "INSERT INTO notice SELECT * FROM notice_batch "
            "ON CONFLICT (agency_id, dedupe_key) DO NOTHING RETURNING id"
        )
        await raw.execute("TRUNCATE notice_batch")
        raced = {notice["id"] for notice in writes.notices} - {row["id"] for row in inserted}
    else:
        await raw.execute("RELEASE SAVEPOINT notice_batch")
    kept = {str(notice_id) for notice_id in raced}
    await _copy(
        raw, "outbox", OUTBOX_TABLE, [r for r in writes.outbox if r["notice_id"] not in raced]
    )
    await _copy(
        raw,
        "timer",
        TIMER_TABLE,
        [r for r in writes.timers if r["payload"]["notice_id"] not in kept],
    )
    return raced


async def _copy(raw: Any, target: str, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    names = [column.name for column in table.columns]
    values = itemgetter(*names)
    json_at = [i for i, column in enumerate(table.columns) if isinstance(column.type, sa.JSON)]
    records = []
    for row in rows:
        record = list(values(row))
        for i in json_at:
            record[i] = _json_text(record[i])
        records.append(record)
    await raw.copy_records_to_table(target, records=records, columns=names)
