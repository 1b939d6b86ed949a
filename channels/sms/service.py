"""What Twilio's webhooks mean for the hub: texts in, delivery statuses, STOP and START.

Inbound texts. A text from a number that a party has VERIFIED lands on that party's open
case, identified by ``verified_phone``. When the party has several open cases the text is
held in the review queue (``several_open_cases``) and the hub texts back once, asking which
case it is about (a short numbered list of references and titles); the answer — the number
from that list, or a case reference anywhere in the text — puts every held text and the
answer itself on that case. A text that names one of the party's open cases by reference
lands there without asking. No open case (``no_open_case``), a number that is unknown or
not verified (``unknown_sender``), or one verified by more than one party
(``several_parties``): the review queue, with the party suggested where there is one.
Nothing is dropped, and the sender's number alone never puts a text on a case it was not
verified for.

STOP and START. A text that is only a stop word (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END,
QUIT, and the Dutch STOPPEN and AFMELDEN) sets ``opted_out_at`` on every address with that
number, whoever's it is: it is the phone that asked. START, UNSTOP (or the Dutch
AANMELDEN) clears it. The change is recorded as an ``sms_opted_out`` / ``sms_opted_in``
event on each open case of the parties concerned — where staff and the citizen look — and
the keyword is not itself a message on a case. A number with no open case keeps the change
on its address only. While opted out the number is not an address the hub sends texts to
(``hub.messages.service.address_for``), and a text already queued is refused by the
adapter, so the next channel takes over.

Statuses. A status callback moves the outbox row found by the MessageSid, and its message,
forwards only: queued < sending < sent < delivered | undelivered | failed. ``delivered``
is final; ``undelivered`` and ``failed`` are a permanent failure with Twilio's error code,
and the text goes out on the next channel (``hub.delivery.worker.fall_back``). A repeated
webhook is applied once (``first_receipt``: the MessageSid for texts, the MessageSid and
status for callbacks).
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.sms import PROVIDER
from hub.db import utcnow
from hub.delivery.service import enqueue
from hub.delivery.worker import fall_back, show_on_message
from hub.events.fanout import Broker
from hub.events.service import Actor, append_event
from hub.messages.segments import count_segments
from hub.messages.service import post_message
from hub.models import Case, DigitalAddress, Message, OutboxItem, Party, ReviewItem
from hub.parties.phones import e164_or_none
from hub.review.service import add_review_item, first_receipt

log = logging.getLogger("channels.sms")

STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "STOPPEN", "AFMELDEN"}
)
START_WORDS = frozenset({"START", "UNSTOP", "AANMELDEN"})

# Twilio's message statuses in the order they happen; the last ones are final.
TWILIO_ORDER = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
    "canceled": 3,
    "read": 4,
}
FAILED = frozenset({"undelivered", "failed", "canceled"})
FINAL_HUB_STATUSES = frozenset(
    {"delivered", "permanent-failure", "temporary-failure", "technical-failure"}
)
# Twilio's delivery error codes (https://www.twilio.com/docs/api/errors).
DELIVERY_ERRORS = {
    30001: "queue overflow",
    30002: "account suspended",
    30003: "unreachable handset",
    30004: "message blocked",
    30005: "unknown handset",
    30006: "landline or unreachable carrier",
    30007: "filtered by the carrier",
    30008: "unknown error",
}

WHICH_CASE_TEMPLATE = "sms_which_case"
MAX_LISTED_CASES = 5
TITLE_CHARS = 28

_REFERENCE = re.compile(r"\b([A-Za-z]{2})[\s-]?(\d{4})[\s-]?(\d{1,6})\b")
_LIST_NUMBER = re.compile(r"^\s*(\d{1,2})\s*[.)]?\s*$")

Outcome = Literal[
    "duplicate",
    "opted_out",
    "opted_in",
    "on_case",
    "held_and_asked",
    "held",
    "answered",
    "review",
]


@dataclass(frozen=True)
class InboundResult:
    """What became of an inbound text: where it went, and the case when it landed on one."""

    outcome: Outcome
    case_id: uuid.UUID | None = None
    review_reason: str | None = None


def keyword(body: str) -> Literal["stop", "start"] | None:
    """``stop`` or ``start`` when the text is nothing but one of those words."""
    word = body.strip().strip(".!").strip().upper()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    return None


def references_in(text: str) -> set[str]:
    """Case references named in ``text``, written as the hub writes them (VR-2026-000012);
    lenient about case, spaces and leading zeros (``vr 2026 12``)."""
    return {
        f"{prefix.upper()}-{year}-{int(number):06d}"
        for prefix, year, number in _REFERENCE.findall(text)
    }


async def receive_text(
    session: AsyncSession,
    *,
    sid: str,
    sender: str,
    body: str,
    region: str,
    meta: dict[str, Any] | None = None,
    broker: Broker | None = None,
) -> InboundResult:
    """Apply one inbound text (see the module docstring). Applied once per ``sid``."""
    if not await first_receipt(session, "twilio-sms", sid):
        return InboundResult("duplicate")
    body = body.replace("\x00", "")
    number = e164_or_none(sender, region)
    details = {**(meta or {}), "from": number or sender[:40]}
    count = count_segments(body)
    details.update(segments=count.segments, encoding=count.encoding)

    if number is not None and (word := keyword(body)) is not None:
        await set_opt_out(session, number, opted_out=word == "stop", broker=broker)
        return InboundResult("opted_out" if word == "stop" else "opted_in")

    addresses = await _verified_addresses(session, number) if number else []
    party_ids = list(dict.fromkeys(a.party_id for a in addresses))
    if len(party_ids) != 1:
        reason = "unknown_sender" if not party_ids else "several_parties"
        details["suggested_parties"] = [str(p) for p in party_ids]
        await _hold(
            session, sid=sid, sender=number or sender, body=body, reason=reason, meta=details
        )
        return InboundResult("review", review_reason=reason)

    party = await session.get(Party, party_ids[0])
    assert party is not None
    assert number is not None
    open_cases = await _open_cases(session, party.id)
    if not open_cases:
        await _hold(
            session,
            sid=sid,
            sender=number,
            body=body,
            reason="no_open_case",
            meta=details,
            party_id=party.id,
        )
        return InboundResult("review", review_reason="no_open_case")
    if len(open_cases) == 1:
        await _land(
            session,
            case=open_cases[0],
            party=party,
            sid=sid,
            body=body,
            meta=details,
            broker=broker,
        )
        return InboundResult("on_case", case_id=open_cases[0].id)

    pending = await _held_for_choice(session, party.id, number)
    listed = _listed(pending, open_cases)
    chosen = _choice(body, open_cases, listed if pending else [])
    if chosen is not None:
        for item in pending:
            await _attach(session, item=item, case=chosen, party=party, broker=broker)
        await _land(
            session, case=chosen, party=party, sid=sid, body=body, meta=details, broker=broker
        )
        return InboundResult("answered" if pending else "on_case", case_id=chosen.id)

    if pending:
        details["candidates"] = pending[0].meta.get("candidates") or []
    else:
        details["candidates"] = [str(c.id) for c in listed if c is not None]
    await _hold(
        session,
        sid=sid,
        sender=number,
        body=body,
        reason="several_open_cases",
        meta=details,
        party_id=party.id,
    )
    if pending or any(a.opted_out_at is not None for a in addresses):
        # Asked already; or the number texted STOP, and the question would not be sent.
        return InboundResult("held", review_reason="several_open_cases")
    await enqueue(
        session,
        channel="sms",
        recipient=number,
        template=WHICH_CASE_TEMPLATE,
        body=which_case_text([c for c in listed if c is not None], party.preferred_language),
        language=party.preferred_language,
        party_id=party.id,
    )
    return InboundResult("held_and_asked", review_reason="several_open_cases")


def which_case_text(cases: list[Case], language: str) -> str:
    """The question the hub texts back: a numbered list of references and short titles,
    kept to three SMS parts (titles are left out when they would make it longer)."""
    if language == "en":
        head = "You have more than one open case. Which is your text about? Reply with its number:"
    else:
        head = "U heeft meer dan één lopende zaak. Over welke gaat uw sms? Antwoord met het nummer:"

    def build(with_titles: bool) -> str:
        lines = [head]
        for number, case in enumerate(cases, start=1):
            title = f" {short_title(case.title)}" if with_titles else ""
            lines.append(f"{number} {case.reference}{title}")
        return "\n".join(lines)

    text = build(with_titles=True)
    return text if count_segments(text).segments <= 3 else build(with_titles=False)


def short_title(title: str) -> str:
    """At most ``TITLE_CHARS`` characters, cut at a word, with "..." (the one-character
    ellipsis is outside GSM-7 and would shorten every part of the text)."""
    if len(title) <= TITLE_CHARS:
        return title
    cut = title[: TITLE_CHARS - 3].rsplit(" ", 1)[0].rstrip(" ,.;:-")
    return cut + "..."


async def set_opt_out(
    session: AsyncSession, number: str, *, opted_out: bool, broker: Broker | None = None
) -> list[DigitalAddress]:
    """STOP (``opted_out``) or START for every address with this E.164 number; returns the
    addresses that changed. Each change is an event on the owner's open cases."""
    rows = (
        await session.exec(
            select(DigitalAddress).where(
                DigitalAddress.kind == "phone", DigitalAddress.value == number
            )
        )
    ).all()
    now = utcnow()
    changed = [row for row in rows if (row.opted_out_at is None) == opted_out]
    for row in changed:
        row.opted_out_at = now if opted_out else None
        session.add(row)
    await session.flush()
    for row in changed:
        party = await session.get(Party, row.party_id)
        if party is None:
            continue
        for case in await _open_cases(session, party.id):
            await append_event(
                session,
                case_id=case.id,
                kind="sms_opted_out" if opted_out else "sms_opted_in",
                actor=_citizen(party),
                payload={"channel": "sms", "address_id": str(row.id)},
                broker=broker,
            )
    log.info("sms %s: %d address(es) changed", "opt-out" if opted_out else "opt-in", len(changed))
    return changed


async def apply_status(
    session: AsyncSession,
    *,
    sid: str,
    status: str,
    error_code: int | None = None,
    outbox_id: uuid.UUID | None = None,
    broker: Broker | None = None,
) -> str | None:
    """Apply a status callback to the text with this MessageSid; returns the hub status it
    moved to, or None when it did not move (unknown text or status, a repeat, or a status
    that would go backwards).

    A callback may come before the worker recorded the MessageSid (Twilio calls back as soon
    as it has the text): then the row ``outbox_id`` named in the callback URL, still without
    one, takes the MessageSid, and the worker keeps the status found when it records."""
    status = status.strip().lower()
    if status not in TWILIO_ORDER:
        log.info("sms status callback with an unknown status ignored")
        return None
    query = select(OutboxItem).where(OutboxItem.provider == PROVIDER, OutboxItem.provider_id == sid)
    item = (await session.exec(query.with_for_update())).first()
    if item is None and outbox_id is not None:
        early = select(OutboxItem).where(
            OutboxItem.id == outbox_id,
            OutboxItem.channel == "sms",
            col(OutboxItem.provider_id).is_(None),
        )
        item = (await session.exec(early.with_for_update())).first()
        if item is not None:
            item.provider, item.provider_id = PROVIDER, sid
    if item is None:
        log.warning("sms status callback for a MessageSid the outbox does not know")
        return None
    if not await first_receipt(session, "twilio-status", f"{sid}:{status}"):
        return None
    last = item.meta.get("twilio_status")
    if item.status in FINAL_HUB_STATUSES or (
        last in TWILIO_ORDER and TWILIO_ORDER[status] <= TWILIO_ORDER[last]
    ):
        return None
    item.meta = {**item.meta, "twilio_status": status}
    item.updated_at = utcnow()
    if status in ("delivered", "read"):
        item.status = "delivered"
    elif status in FAILED:
        item.status = "permanent-failure"
        reason = DELIVERY_ERRORS.get(error_code or 0, "no reason given")
        item.last_error = f"Twilio: {status}, error {error_code} ({reason})"
    session.add(item)
    await show_on_message(session, item)
    await session.flush()
    if item.status == "permanent-failure":
        await fall_back(session, item, broker=broker)
    return item.status


# -- inbound: where a text goes ------------------------------------------------------------


def _citizen(party: Party) -> Actor:
    return Actor(kind="citizen", id=str(party.id), name=party.name)


async def _verified_addresses(session: AsyncSession, number: str) -> list[DigitalAddress]:
    query = select(DigitalAddress).where(
        DigitalAddress.kind == "phone",
        DigitalAddress.value == number,
        col(DigitalAddress.verified_at).is_not(None),
    )
    return list((await session.exec(query)).all())


async def _open_cases(session: AsyncSession, party_id: uuid.UUID) -> list[Case]:
    query = (
        select(Case)
        .where(Case.party_id == party_id, Case.status == "open")
        .order_by(col(Case.updated_at).desc(), col(Case.reference))
    )
    return list((await session.exec(query)).all())


async def _held_for_choice(
    session: AsyncSession, party_id: uuid.UUID, number: str
) -> list[ReviewItem]:
    """Texts of this party's number held until they say which case: oldest first."""
    query = (
        select(ReviewItem)
        .where(
            ReviewItem.channel == "sms",
            ReviewItem.reason == "several_open_cases",
            ReviewItem.status == "open",
            ReviewItem.party_id == party_id,
            ReviewItem.sender == number,
        )
        .order_by(col(ReviewItem.received_at))
    )
    return list((await session.exec(query)).all())


def _listed(pending: list[ReviewItem], open_cases: list[Case]) -> list[Case | None]:
    """The cases in the list the hub texted (or is about to text), in its order; None for
    one closed since, so that the numbers keep pointing where they did."""
    if pending:
        by_id = {str(c.id): c for c in open_cases}
        asked = pending[0].meta.get("candidates") or []
        return [by_id.get(i) for i in asked]
    return list(open_cases[:MAX_LISTED_CASES])


def _choice(body: str, open_cases: list[Case], listed: list[Case | None]) -> Case | None:
    """The one open case the text names: by reference, or by its number in the list the
    hub sent (only when the whole text is that number)."""
    named = references_in(body)
    matches = [c for c in open_cases if c.reference in named]
    if len(matches) == 1:
        return matches[0]
    if matches or not listed:
        return None
    found = _LIST_NUMBER.match(body)
    if found and 1 <= int(found.group(1)) <= len(listed):
        return listed[int(found.group(1)) - 1]
    return None


async def _land(
    session: AsyncSession,
    *,
    case: Case,
    party: Party,
    sid: str | None,
    body: str,
    meta: dict[str, Any],
    broker: Broker | None,
) -> Message:
    return await post_message(
        session,
        case=case,
        channel="sms",
        direction="inbound",
        author=_citizen(party),
        body=body,
        identified_by="verified_phone",
        external_id=sid,
        meta={k: v for k, v in meta.items() if k != "candidates"},
        broker=broker,
    )


async def _attach(
    session: AsyncSession,
    *,
    item: ReviewItem,
    case: Case,
    party: Party,
    broker: Broker | None,
) -> None:
    """Put a held text on the case the citizen chose, and close its review item."""
    meta = {k: v for k, v in item.meta.items() if k != "candidates"}
    meta["received_at"] = item.received_at.isoformat()
    meta["held_until_case_chosen"] = True
    message = await _land(
        session,
        case=case,
        party=party,
        sid=item.external_id,
        body=item.body,
        meta=meta,
        broker=broker,
    )
    item.status = "attached"
    item.case_id = case.id
    item.message_id = message.id
    item.resolved_at = utcnow()
    session.add(item)


async def _hold(
    session: AsyncSession,
    *,
    sid: str,
    sender: str,
    body: str,
    reason: str,
    meta: dict[str, Any],
    party_id: uuid.UUID | None = None,
) -> ReviewItem:
    return await add_review_item(
        session,
        channel="sms",
        sender=sender[:320],
        body=body,
        reason=reason,
        external_id=sid,
        meta=meta,
        party_id=party_id,
    )
