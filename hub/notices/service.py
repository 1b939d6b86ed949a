"""Notices: one message an agency sends a party unasked, on the party's terms.

``route_notice`` decides, per recipient, what happens to one notice — the one function the
single-notice API and (later) bulk jobs both call:

1. the same notice again (the agency's ``dedupe_key``, else a hash of party, topic, template
   and personalisation) → the notice stored the first time is the answer; nothing is sent;
2. the channel: the party's preferred channel with a usable address, else email → SMS →
   letter; a party who prefers the portal gets it there, with an email alert when they have a
   verified mail address; a party with no address at all gets it in the portal only;
3. the text of that channel's template, in the party's language (else the other language;
   email and letters fall back to the portal text): a missing placeholder is refused with a
   422 before anything is stored;
4. no consent for the topic (never given, or withdrawn) → stored as ``not-sent``,
   ``no_consent``; over the daily cap per party and agency → ``not-sent``, ``daily_cap``;
5. a text in quiet hours (21:00 to 08:00 local) is held by a durable timer and released by
   ``release_held_notices``; anything else goes to the outbox at once, and the notice's
   status follows its outbox row (``notice_status_from_outbox``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.clock import local_date, start_of_local_day
from hub.config import Settings
from hub.db import Database, utcnow
from hub.delivery.service import enqueue
from hub.errors import Conflict, InvalidInput, NotFound
from hub.messages.segments import check_text
from hub.messages.service import FALLBACK_ORDER, Route, address_for, delivery_context, route
from hub.models import (
    Agency,
    Case,
    ConsentTopic,
    Notice,
    NoticeTemplate,
    OutboxItem,
    Party,
    Timer,
)
from hub.notices.consent import consent_in_force
from hub.notices.templates import (
    LANGUAGES,
    Compiled,
    Rendered,
    check_template,
    compile_template,
)

# At most this many notices reach one party from one agency on one local day; more are
# not sent (reason ``daily_cap``), so a misfiring back office cannot flood anyone.
DAILY_CAP = 3
# Texts are not sent at night: from QUIET_START until QUIET_END local time they wait.
QUIET_START = dt.time(21, 0)
QUIET_END = dt.time(8, 0)
QUIET_HOURS_TIMER = "notice_quiet_hours"
# For callers that do not know the hub's time zone (the delivery worker's record()).
DEFAULT_TIMEZONE: str = Settings.model_fields["timezone"].default
OUTBOX_TEMPLATE = "notice"
# Final statuses of a delivery (see DESIGN): the notice takes them from its outbox row.
DELIVERY_STATUSES = (
    "sending",
    "delivered",
    "permanent-failure",
    "temporary-failure",
    "technical-failure",
)

# Where a channel's text comes from when the agency wrote none for it, in this order.
TEXT_SOURCES: dict[str, tuple[str, ...]] = {
    "portal": ("portal", "email", "letter", "sms"),
    "email": ("email", "portal"),
    "letter": ("letter", "portal"),
    "sms": ("sms",),
}

ALERT_TEXT = {
    "nl": "Er staat een nieuw bericht van {agency} voor u klaar: {subject}\n\n"
    "Lees het in uw berichtenbox: {url}",
    "en": "There is a new message from {agency} for you: {subject}\n\nRead it in your inbox: {url}",
}
ALERT_SUBJECT = {"nl": "Nieuw bericht van {agency}", "en": "New message from {agency}"}


@dataclass(frozen=True)
class NoticeRequest:
    """What an agency asks to tell one party (already resolved to rows)."""

    agency: Agency
    party: Party
    topic: ConsentTopic
    template_code: str
    personalisation: Mapping[str, Any]
    journey_id: str | None = None
    case: Case | None = None
    important: bool = False
    escalate_after_days: int | None = None
    dedupe_key: str | None = None


@dataclass(frozen=True)
class Routed:
    """The notice that answers a request, and whether this request created it."""

    notice: Notice
    created: bool


# Built once: ``json.dumps`` with options makes an encoder on every call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode


def default_dedupe_key(
    *, party_id: uuid.UUID, topic_code: str, template_code: str, personalisation: Mapping[str, Any]
) -> str:
    """The same party, topic, template and personalisation make the same notice."""
    canonical = _CANONICAL([str(party_id), topic_code, template_code, personalisation])
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def quiet_until(moment: dt.datetime, timezone: str) -> dt.datetime | None:
    """When quiet hours end if ``moment`` falls in them (as UTC), else None."""
    zone = ZoneInfo(timezone)
    local = moment.astimezone(zone)
    if local.time() >= QUIET_START:
        day = local.date() + dt.timedelta(days=1)
    elif local.time() < QUIET_END:
        day = local.date()
    else:
        return None
    return dt.datetime.combine(day, QUIET_END, tzinfo=zone).astimezone(dt.UTC)


def language_of(party: Party) -> str:
    return party.preferred_language if party.preferred_language in LANGUAGES else "nl"


async def templates_named(
    session: AsyncSession, *, agency_id: str, code: str
) -> dict[tuple[str, str], NoticeTemplate]:
    """The agency's templates called ``code``, by (channel, language)."""
    rows = (
        await session.exec(
            select(NoticeTemplate).where(
                NoticeTemplate.agency_id == agency_id, NoticeTemplate.code == code
            )
        )
    ).all()
    return {(t.channel, t.language): t for t in rows}


def template_for(
    templates: Mapping[tuple[str, str], NoticeTemplate], channel: str, language: str
) -> NoticeTemplate | None:
    """The template to use on ``channel`` in ``language``, following ``TEXT_SOURCES``."""
    other = [lang for lang in LANGUAGES if lang != language]
    for source in TEXT_SOURCES[channel]:
        for lang in (language, *other):
            found = templates.get((source, lang))
            if found is not None:
                return found
    return None


def compiled_for(
    templates: Mapping[tuple[str, str], NoticeTemplate], channel: str, language: str
) -> Compiled:
    """The parsed template to use on ``channel`` in ``language``; 422 when there is none."""
    template = template_for(templates, channel, language)
    if template is None:
        raise InvalidInput(f"There is no template for channel '{channel}' to send this notice by.")
    return compile_template(template.subject, template.body)


def fill(compiled: Compiled, channel: str, values: Mapping[str, Any]) -> Rendered:
    """The template filled in; a text must also fit what a text message can carry."""
    rendered = compiled.render(values)
    if channel == "sms":
        check_text(rendered.body)
    return rendered


def render_for(
    templates: Mapping[tuple[str, str], NoticeTemplate],
    channel: str,
    language: str,
    values: Mapping[str, Any],
) -> Rendered:
    return fill(compiled_for(templates, channel, language), channel, values)


async def choose_channel(session: AsyncSession, party: Party) -> tuple[str, Route | None]:
    """The channel a notice goes by and, unless it is the portal, the address on it."""
    preferred = party.preferred_channel
    if preferred in FALLBACK_ORDER or "no_digital_contact" in party.needs:
        target = await route(session, party, preferred)
        if target is not None:
            return target.channel, target
    return "portal", None


async def notice_by_key(session: AsyncSession, *, agency_id: str, dedupe_key: str) -> Notice | None:
    query = select(Notice).where(Notice.agency_id == agency_id, Notice.dedupe_key == dedupe_key)
    return (await session.exec(query)).first()


async def sent_today(
    session: AsyncSession, *, agency_id: str, party_id: uuid.UUID, now: dt.datetime, timezone: str
) -> int:
    """How many notices of the agency to the party count towards today's cap."""
    since = start_of_local_day(local_date(now, timezone), timezone)
    query = select(func.count()).where(
        Notice.agency_id == agency_id,
        Notice.party_id == party_id,
        Notice.created_at >= since,
        Notice.status != "not-sent",
    )
    return (await session.exec(query)).one()


async def route_notice(
    session: AsyncSession,
    request: NoticeRequest,
    *,
    timezone: str,
    base_url: str,
    now: dt.datetime | None = None,
) -> Routed:
    """Decide and record what happens to one notice to one party (see the module's steps).

    Writes the notice, and its outbox rows or quiet-hours timer, in the caller's
    transaction; nothing is sent before it commits. Raises InvalidInput (nothing stored) when
    the template is missing or a placeholder is not given.
    """
    now = now or utcnow()
    agency, party, topic = request.agency, request.party, request.topic
    dedupe_key = request.dedupe_key or default_dedupe_key(
        party_id=party.id,
        topic_code=topic.code,
        template_code=request.template_code,
        personalisation=request.personalisation,
    )
    existing = await notice_by_key(session, agency_id=agency.id, dedupe_key=dedupe_key)
    if existing is not None:
        return Routed(existing, created=False)

    templates = await templates_named(session, agency_id=agency.id, code=request.template_code)
    if not templates:
        raise InvalidInput(
            f"Agency '{agency.id}' has no notice template '{request.template_code}'."
        )
    language = language_of(party)
    values = {"party_name": party.name, "agency_name": agency.name, **request.personalisation}
    channel, target = await choose_channel(session, party)
    shown = render_for(templates, "portal", language, values)
    text = render_for(templates, channel, language, values) if target is not None else shown

    notice = Notice(
        agency_id=agency.id,
        party_id=party.id,
        topic_id=topic.id or 0,
        template_code=request.template_code,
        personalisation=dict(request.personalisation),
        journey_id=request.journey_id,
        case_id=request.case.id if request.case else None,
        important=request.important,
        escalate_after_days=request.escalate_after_days,
        dedupe_key=dedupe_key,
        channel=channel,
        subject=shown.subject,
        body=shown.body,
        created_at=now,
        updated_at=now,
    )
    consent = await consent_in_force(session, party_id=party.id, topic_id=topic.id or 0)
    if consent is None or not consent.granted:
        notice.status, notice.reason, notice.channel = "not-sent", "no_consent", None
    elif (
        await sent_today(
            session, agency_id=agency.id, party_id=party.id, now=now, timezone=timezone
        )
        >= DAILY_CAP
    ):
        notice.status, notice.reason, notice.channel = "not-sent", "daily_cap", None
    try:
        async with session.begin_nested():
            session.add(notice)
    except IntegrityError:
        # The same notice was posted at the same moment by another request: that one counts.
        raced = await notice_by_key(session, agency_id=agency.id, dedupe_key=dedupe_key)
        if raced is None:
            raise
        return Routed(raced, created=False)
    if notice.status == "not-sent":
        return Routed(notice, created=True)

    context = await outbox_context(session, notice, agency=agency, party=party, case=request.case)
    if target is None:
        notice.status = "delivered"
        alert_to = await address_for(session, party, "email")
        if alert_to is not None and "no_digital_contact" not in party.needs:
            await enqueue_alert(
                session,
                notice,
                recipient=alert_to,
                language=language,
                context=context,
                agency=agency,
                base_url=base_url,
            )
    else:
        await dispatch(
            session,
            notice,
            target=target,
            text=text,
            language=language,
            context=context,
            now=now,
            timezone=timezone,
        )
    session.add(notice)
    await session.flush()
    return Routed(notice, created=True)


async def dispatch(
    session: AsyncSession,
    notice: Notice,
    *,
    target: Route,
    text: Rendered,
    language: str,
    context: Mapping[str, Any],
    now: dt.datetime,
    timezone: str,
    tried: tuple[str, ...] = (),
) -> None:
    """Send the notice on ``target``: into the outbox now, or a text in quiet hours held by
    a timer until they end."""
    notice.channel = target.channel
    context = {**context, "tried": [*tried, target.channel]}
    release_at = quiet_until(now, timezone) if target.channel == "sms" else None
    if release_at is None:
        await enqueue_notice(
            session,
            notice,
            recipient=target.recipient,
            text=text,
            language=language,
            context=context,
        )
        return
    notice.status, notice.reason = "created", "quiet_hours"
    notice.updated_at = now
    session.add(
        Timer(
            case_id=notice.case_id,
            kind=QUIET_HOURS_TIMER,
            due_at=release_at,
            payload={
                "notice_id": str(notice.id),
                "recipient": target.recipient,
                "subject": text.subject,
                "body": text.body,
                "language": language,
                "context": context,
            },
            created_at=now,
        )
    )


async def outbox_context(
    session: AsyncSession, notice: Notice, *, agency: Agency, party: Party, case: Case | None
) -> dict[str, Any]:
    """What the channel templates may show around a notice (see ``hub.ports.Outbound``)."""
    context: dict[str, Any] = (
        await delivery_context(session, case, party) if case is not None else {}
    )
    context.update(
        {
            "agency_id": agency.id,
            "agency_name": agency.name,
            "party_name": party.name,
            "notice_id": str(notice.id),
        }
    )
    return context


async def enqueue_notice(
    session: AsyncSession,
    notice: Notice,
    *,
    recipient: str,
    text: Rendered,
    language: str,
    context: Mapping[str, Any],
) -> OutboxItem:
    """The notice's delivery on its channel; the notice is ``sending`` from now on."""
    assert notice.channel is not None
    item = await enqueue(
        session,
        channel=notice.channel,
        recipient=recipient,
        template=OUTBOX_TEMPLATE,
        body=text.body,
        subject=text.subject,
        language=language,
        party_id=notice.party_id,
        case_id=notice.case_id,
        context=dict(context),
    )
    item.notice_id = notice.id
    session.add(item)
    notice.status, notice.reason = "sending", None
    notice.updated_at = utcnow()
    return item


def notice_url(base_url: str, notice_id: uuid.UUID) -> str:
    """The portal page of a notice (``hub/web/notices.py``): opening it reads the notice."""
    return f"{base_url.rstrip('/')}/notices/{notice_id}"


async def enqueue_alert(
    session: AsyncSession,
    notice: Notice,
    *,
    recipient: str,
    language: str,
    context: Mapping[str, Any],
    agency: Agency,
    base_url: str,
) -> OutboxItem:
    """A mail telling the party a notice waits in the portal, with the link that opens it
    (and so marks it read). The notice's status does not follow this mail."""
    url = notice_url(base_url, notice.id)
    item = await enqueue(
        session,
        channel="email",
        recipient=recipient,
        template=OUTBOX_TEMPLATE,
        body=ALERT_TEXT[language].format(agency=agency.name, subject=notice.subject, url=url),
        subject=ALERT_SUBJECT[language].format(agency=agency.name),
        language=language,
        party_id=notice.party_id,
        case_id=notice.case_id,
        context={**context, "notice_role": "alert", "notice_url": url, "tried": ["email"]},
    )
    item.notice_id = notice.id
    session.add(item)
    return item


async def release_held_notices(database: Database, now: dt.datetime | None = None) -> int:
    """Put the texts held for quiet hours whose hold has ended in the outbox; returns how many.

    A notice is held while its status is ``created`` with reason ``quiet_hours``; the hold's
    end is its timer's due time. The notice row is the truth, not the timer's ``fired_at``
    (a generic timer round may mark the timer fired first), so a text is released exactly
    once. Consent withdrawn during the night stops it (``not-sent``, ``no_consent``).
    """
    now = now or utcnow()
    async with database.session() as session:
        query = (
            select(Notice)
            .where(Notice.status == "created", Notice.reason == "quiet_hours")
            .order_by(col(Notice.created_at))
            .limit(500)
        )
        if database.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        held = {str(n.id): n for n in (await session.exec(query)).all()}
        if not held:
            return 0
        oldest = min(n.created_at for n in held.values())
        timers = (
            await session.exec(
                select(Timer).where(
                    Timer.kind == QUIET_HOURS_TIMER,
                    Timer.due_at <= now,
                    Timer.created_at >= oldest - dt.timedelta(minutes=1),
                    col(Timer.cancelled_at).is_(None),
                )
            )
        ).all()
        released = 0
        for timer in timers:
            notice = held.pop(str(timer.payload.get("notice_id")), None)
            if notice is None:
                continue
            timer.fired_at = timer.fired_at or now
            session.add(timer)
            consent = await consent_in_force(
                session, party_id=notice.party_id or uuid.UUID(int=0), topic_id=notice.topic_id
            )
            if consent is None or not consent.granted:
                notice.status, notice.reason = "not-sent", "no_consent"
                notice.updated_at = now
                session.add(notice)
                continue
            payload = timer.payload
            await enqueue_notice(
                session,
                notice,
                recipient=str(payload["recipient"]),
                text=Rendered(subject=str(payload["subject"]), body=str(payload["body"])),
                language=str(payload["language"]),
                context=dict(payload["context"]),
            )
            session.add(notice)
            released += 1
        return released


async def notice_status_from_outbox(
    session: AsyncSession,
    item: OutboxItem,
    *,
    timezone: str = DEFAULT_TIMEZONE,
    now: dt.datetime | None = None,
) -> Notice | None:
    """Bring the notice of ``item`` to the delivery's status; the notice if it changed.

    For the worker (and delivery callbacks) to call after an outbox row's status changed,
    instead of the case fallback for rows of a notice. A bounce passes the notice to the next
    channel of email → SMS → letter that has an address and a template (the notice is
    ``sending`` again, on that channel); only when none is left does it stay
    ``permanent-failure``. The portal alert mail of a notice does not change it: the notice
    was delivered in the portal. Calling it again for the same row changes nothing.
    """
    if item.notice_id is None or item.meta.get("notice_role") == "alert":
        return None
    if item.status not in DELIVERY_STATUSES:
        return None
    notice = await session.get(Notice, item.notice_id)
    if notice is None or notice.status in (item.status, "not-sent"):
        return None
    if notice.channel != item.channel:
        return None  # the notice went on to another channel: this row no longer speaks for it
    now = now or utcnow()
    if item.status == "permanent-failure" and await fall_back(
        session, notice, item, timezone=timezone, now=now
    ):
        return notice
    notice.status = item.status
    notice.channel = item.channel
    notice.updated_at = now
    session.add(notice)
    return notice


async def fall_back(
    session: AsyncSession, notice: Notice, item: OutboxItem, *, timezone: str, now: dt.datetime
) -> bool:
    """Send a bounced notice on the next channel; False when no channel is left."""
    party = await session.get(Party, notice.party_id) if notice.party_id else None
    agency = await session.get(Agency, notice.agency_id)
    if party is None or agency is None:
        return False
    tried = tuple(item.meta.get("tried") or [item.channel])
    templates = await templates_named(
        session, agency_id=notice.agency_id, code=notice.template_code
    )
    values = {"party_name": party.name, "agency_name": agency.name, **notice.personalisation}
    language = language_of(party)
    while (target := await route(session, party, None, tried=tried)) is not None:
        tried = (*tried, target.channel)
        try:
            text = render_for(templates, target.channel, language, values)
        except InvalidInput:
            continue  # no usable template for this channel any more: try the next
        context = {k: v for k, v in item.meta.items() if k != "tried"}
        await dispatch(
            session,
            notice,
            target=target,
            text=text,
            language=language,
            context=context,
            now=now,
            timezone=timezone,
            tried=tried[:-1],
        )
        session.add(notice)
        return True
    return False


async def notice_of_agency(
    session: AsyncSession, *, agency_id: str, notice_id: uuid.UUID
) -> Notice:
    """The agency's notice; NotFound for another agency's, as for one that does not exist."""
    notice = await session.get(Notice, notice_id)
    if notice is None or notice.agency_id != agency_id:
        raise NotFound("No such notice.")
    return notice


async def notice_of_party(
    session: AsyncSession, *, party_id: uuid.UUID, notice_id: uuid.UUID
) -> Notice:
    """A notice the party received; NotFound for anyone else's, and for one never sent."""
    notice = await session.get(Notice, notice_id)
    if notice is None or notice.party_id != party_id or notice.status == "not-sent":
        raise NotFound("No such notice.")
    return notice


async def inbox(session: AsyncSession, party_id: uuid.UUID) -> list[Notice]:
    """The notices the party received, newest first (not those that were not sent)."""
    query = (
        select(Notice)
        .where(Notice.party_id == party_id, Notice.status != "not-sent")
        .order_by(col(Notice.created_at).desc())
    )
    return list((await session.exec(query)).all())


async def mark_read(session: AsyncSession, notice: Notice) -> Notice:
    """The first time the party opened the notice in the portal is when it was read."""
    if notice.read_at is None:
        notice.read_at = utcnow()
        notice.updated_at = notice.read_at
        session.add(notice)
    return notice


async def save_template(
    session: AsyncSession,
    *,
    agency_id: str,
    code: str,
    channel: str,
    language: str,
    subject: str,
    body: str,
) -> NoticeTemplate:
    """Create or replace the agency's template for the channel and language; a template that
    does not parse is refused (422 naming the line)."""
    check_template(subject=subject, body=body)
    query = select(NoticeTemplate).where(
        NoticeTemplate.agency_id == agency_id,
        NoticeTemplate.code == code,
        NoticeTemplate.channel == channel,
        NoticeTemplate.language == language,
    )
    template = (await session.exec(query.with_for_update())).first()
    now = utcnow()
    if template is None:
        template = NoticeTemplate(
            agency_id=agency_id,
            code=code,
            channel=channel,
            language=language,
            subject=subject,
            body=body,
            created_at=now,
        )
    template.subject, template.body, template.updated_at = subject, body, now
    try:
        async with session.begin_nested():
            session.add(template)
    except IntegrityError:
        raise Conflict(
            "This template was created by another request just now; try again."
        ) from None
    return template


async def templates_of_agency(session: AsyncSession, agency_id: str) -> list[NoticeTemplate]:
    query = (
        select(NoticeTemplate)
        .where(NoticeTemplate.agency_id == agency_id)
        .order_by(
            col(NoticeTemplate.code), col(NoticeTemplate.channel), col(NoticeTemplate.language)
        )
    )
    return list((await session.exec(query)).all())


async def template_of_agency(
    session: AsyncSession, *, agency_id: str, code: str, channel: str, language: str
) -> NoticeTemplate:
    found = (await templates_named(session, agency_id=agency_id, code=code)).get(
        (channel, language)
    )
    if found is None:
        raise NotFound(f"No template '{code}' for {channel} in language '{language}'.")
    return found
