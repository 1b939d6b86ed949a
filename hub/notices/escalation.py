"""Escalation: an important notice nobody read is sent again by SMS or by letter.

Digital-only government post that people never see is the failure this prevents. A notice
is due for escalation when all of these hold:

- it is ``important``, not read (``read_at`` null) and not escalated before;
- it reached the citizen on a digital channel: stored in the portal, or an email whose
  delivery was reported ``delivered``;
- that was more than ``escalate_after_days`` days ago (``DEFAULT_ESCALATE_AFTER_DAYS`` when
  the agency gave none). The clock starts when the portal stored it (``created_at``) or when
  the mail's delivery was recorded (``updated_at`` of a delivered email notice).

"Read" for an email notice means the citizen opened it in the portal through the mail's link
(``POST /api/me/notices/{id}/read``); there are no tracking pixels.

It then goes by SMS when the party has a usable phone (verified, not opted out) and the
agency has an SMS text, else by letter when they have a postal address. A party who asked
for no digital contact gets the letter. A text in quiet hours is held as ``route_notice``
holds it. Consent withdrawn meanwhile, or no channel left, means no escalation (the notice
is looked at again next round, and goes once the reason is gone).

What is recorded: ``escalated_at``; the notice's ``channel`` and ``status`` follow the new
delivery (as a bounce fallback does, so the delivery's outcome reaches the notice); the
original channel stays in the outbox row's meta (``escalated_from`` and ``tried``) and in
the ``escalated`` event on the notice's case, if it has one.

Each notice is claimed with a conditional ``UPDATE … WHERE escalated_at IS NULL`` in its own
transaction, before anything else is read: two workers at once (PostgreSQL) or a second run
escalate it once.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import cast

from sqlalchemy import ColumnElement, update
from sqlmodel import and_, col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.db import Database, utcnow
from hub.errors import InvalidInput
from hub.events.service import Actor, append_event
from hub.messages.service import Route, address_for
from hub.models import Agency, Case, Notice, Party
from hub.notices.consent import consent_in_force
from hub.notices.service import (
    DEFAULT_TIMEZONE,
    dispatch,
    language_of,
    outbox_context,
    render_for,
    templates_named,
)
from hub.notices.templates import Rendered

# An important notice the agency gave no delay for is escalated after a week unread: long
# enough for someone who checks their mail weekly, short enough to matter for deadlines.
DEFAULT_ESCALATE_AFTER_DAYS = 7
# Digital channels a notice can sit unread on.
DIGITAL_CHANNELS = ("portal", "email")
# At most this many escalations per round, so a bulk job's notices falling due together do
# not hold up the worker's other work; the rest go in the next rounds.
BATCH = 200
ESCALATED_EVENT = "escalated"

log = logging.getLogger("hub.notices")


class _NotEscalated(Exception):
    """Undo the claim: this notice cannot be escalated now."""


async def escalate_unread_notices(
    database: Database,
    *,
    now: dt.datetime | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    batch: int = BATCH,
) -> int:
    """Send important notices left unread too long again by SMS or letter (see the module),
    at most ``batch`` of them, oldest first; returns how many were escalated.

    Notices that cannot go now (no consent, nowhere to send) are passed over, so they never
    keep due notices behind them waiting.
    """
    now = now or utcnow()
    escalated = 0
    for notice_id in await due_notices(database, now=now):
        if escalated >= batch:
            break
        try:
            async with database.session() as session:
                channel = await escalate(session, notice_id, now=now, timezone=timezone)
        except _NotEscalated:
            continue
        log.info("notice %s unread: escalated to %s", notice_id, channel)
        escalated += 1
    return escalated


def _unread_important() -> list[ColumnElement[bool]]:
    return [
        # The bare column, as the partial index ix_notice_unread_important says it: the
        # planner does not see "important IS true" as the same condition.
        cast("ColumnElement[bool]", col(Notice.important)),
        col(Notice.read_at).is_(None),
        col(Notice.escalated_at).is_(None),
        col(Notice.status) == "delivered",
        col(Notice.channel).in_(DIGITAL_CHANNELS),
    ]


async def due_notices(database: Database, *, now: dt.datetime) -> list[uuid.UUID]:
    """The notices due for escalation at ``now``, oldest first.

    Each delay an agency used is one query with its own cutoff, so the comparison stays in
    the database on SQLite and PostgreSQL alike.
    """
    async with database.session() as session:
        delays = (
            await session.exec(
                select(Notice.escalate_after_days).where(*_unread_important()).distinct()
            )
        ).all()
        found: list[tuple[dt.datetime, uuid.UUID]] = []
        for days in delays:
            cutoff = now - dt.timedelta(days=DEFAULT_ESCALATE_AFTER_DAYS if days is None else days)
            same_delay = (
                col(Notice.escalate_after_days).is_(None)
                if days is None
                else col(Notice.escalate_after_days) == days
            )
            query = (
                select(Notice.created_at, Notice.id)
                .where(
                    *_unread_important(),
                    same_delay,
                    or_(
                        and_(col(Notice.channel) == "portal", col(Notice.created_at) <= cutoff),
                        and_(col(Notice.channel) == "email", col(Notice.updated_at) <= cutoff),
                    ),
                )
                .order_by(col(Notice.created_at))
            )
            found.extend((created, id_) for created, id_ in (await session.exec(query)).all())
    return [id_ for _, id_ in sorted(found)]


async def escalate(
    session: AsyncSession, notice_id: uuid.UUID, *, now: dt.datetime, timezone: str
) -> str:
    """Claim the notice and send it again; returns the channel it went on.

    Raises ``_NotEscalated`` (the caller rolls the claim back) when another worker has it,
    it was read meanwhile, or it cannot go now."""
    claim = (
        update(Notice)
        .where(
            col(Notice.id) == notice_id,
            *_unread_important(),
        )
        .values(escalated_at=now, updated_at=now)
    )
    if not (await session.exec(claim)).rowcount:
        raise _NotEscalated
    notice = await session.get(Notice, notice_id, populate_existing=True)
    party = await session.get(Party, notice.party_id) if notice and notice.party_id else None
    agency = await session.get(Agency, notice.agency_id) if notice else None
    if notice is None or party is None or agency is None:
        raise _NotEscalated
    consent = await consent_in_force(session, party_id=party.id, topic_id=notice.topic_id)
    if consent is None or not consent.granted:
        raise _NotEscalated
    original = notice.channel or "portal"
    templates = await templates_named(
        session, agency_id=notice.agency_id, code=notice.template_code
    )
    values = {"party_name": party.name, "agency_name": agency.name, **notice.personalisation}
    language = language_of(party)
    channels = ("letter",) if "no_digital_contact" in party.needs else ("sms", "letter")
    chosen: tuple[Route, Rendered] | None = None
    for channel in channels:
        recipient = await address_for(session, party, channel)
        if not recipient:
            continue
        try:
            chosen = Route(channel, recipient), render_for(templates, channel, language, values)
        except InvalidInput:
            continue  # no text for this channel: the next one
        break
    if chosen is None:
        raise _NotEscalated
    target, text = chosen
    case = await session.get(Case, notice.case_id) if notice.case_id else None
    context = await outbox_context(session, notice, agency=agency, party=party, case=case)
    context["escalated_from"] = original
    # Channels the notice already reached the party on, so a bounce of the escalation
    # falls back to the letter, not to the mail nobody read.
    tried = tuple(dict.fromkeys((original, "email")))
    await dispatch(
        session,
        notice,
        target=target,
        text=text,
        language=language,
        context=context,
        now=now,
        timezone=timezone,
        tried=tried,
    )
    notice.escalated_at = now
    session.add(notice)
    if case is not None:
        await append_event(
            session,
            case_id=case.id,
            kind=ESCALATED_EVENT,
            actor=Actor.system(),
            payload={"notice_id": str(notice.id), "from": original, "channel": target.channel},
        )
    await session.flush()
    return target.channel
