"""Cases: opening one for a party, applying journey actions, and reading where it stands.

The journey engine decides; this module records what it decided — the new state, the
events, the timers, and the messages to the citizen, in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.access.service import Viewer, record_access, visible_agency_filter
from hub.clock import local_today, start_of_local_day
from hub.db import utcnow
from hub.desk.service import follow_up_channel
from hub.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.events.fanout import Broker
from hub.events.service import Actor, append_event
from hub.messages.service import FALLBACK_ORDER, Route, address_for, route, send_to_party
from hub.models import (
    Agency,
    Case,
    CaseParticipant,
    Party,
    ReferenceCounter,
    StaffMember,
    Timer,
)
from journeys.catalog import Catalog, UnknownJourney
from journeys.engine import (
    Action,
    CancelTimer,
    CaseState,
    IllegalAction,
    NotifyCitizen,
    RecordEvent,
    SetTimer,
    Start,
    StatusView,
    apply,
    status_view,
)
from journeys.model import ANY_AGENCY, JourneyDefinition


def reference_prefix(journey_id: str) -> str:
    """Two letters from the journey id: huurtoeslag → HU, ww-uitkering → WU."""
    parts = journey_id.split("-")
    letters = parts[0][0] + parts[1][0] if len(parts) > 1 else journey_id[:2]
    return letters.upper()


async def next_reference(session: AsyncSession, journey_id: str, year: int) -> str:
    """A human-readable, unique case reference such as ``HU-2026-000123``."""
    prefix = reference_prefix(journey_id)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.exec(
        insert(ReferenceCounter)
        .values(prefix=prefix, year=year, last=0)
        .on_conflict_do_nothing(index_elements=["prefix", "year"])
    )
    result = await session.exec(
        update(ReferenceCounter)
        .where(col(ReferenceCounter.prefix) == prefix, col(ReferenceCounter.year) == year)
        .values(last=ReferenceCounter.last + 1)
        .returning(col(ReferenceCounter.last))
    )
    return f"{prefix}-{year}-{result.scalar_one():06d}"


def definition_of(catalog: Catalog, case: Case) -> JourneyDefinition:
    """The definition version the case started under."""
    return catalog.get(case.journey_id, case.journey_version)


async def record_case_access(
    session: AsyncSession,
    viewer: Viewer,
    case: Case,
    catalog: Catalog,
    *,
    action: str,
    data: str,
) -> None:
    """Write the access log line for a read (or change) of the case's party data, under the
    processing activity of the case's journey."""
    await record_access(
        session,
        viewer,
        party_id=case.party_id,
        action=action,
        data=data,
        case=case,
        activity_code=definition_of(catalog, case).processing_activity,
    )


def state_of(case: Case) -> CaseState:
    return CaseState.model_validate(case.state)


async def open_case(
    session: AsyncSession,
    *,
    catalog: Catalog,
    journey_id: str,
    party: Party,
    actor: Actor,
    channel: str = "api",
    broker: Broker | None = None,
    timezone: str = "Europe/Amsterdam",
    today: dt.date | None = None,
    agency_id: str | None = None,
) -> Case:
    """Open a case of the journey's latest version for ``party``.

    An agency system or staff member may only open cases of their own agency's journeys.
    A journey for "any" agency (a general question) opens at ``agency_id`` — the actor's
    agency when not given.
    """
    try:
        definition = catalog.get(journey_id)
    except UnknownJourney:
        raise InvalidInput(f"There is no journey '{journey_id}'.") from None
    owner = definition.agency
    if owner == ANY_AGENCY:
        owner = agency_id or actor.agency_id or ""
        if not owner:
            raise InvalidInput(f"Say which agency journey '{journey_id}' is for.")
    if actor.agency_id is not None and actor.agency_id != owner:
        raise Forbidden(
            f"Journey '{journey_id}' belongs to agency '{owner}'; "
            f"'{actor.agency_id}' cannot open it."
        )
    if await session.get(Agency, owner) is None:
        raise InvalidInput(f"Agency '{owner}' of this journey is not registered.")
    today = today or local_today(timezone)
    outcome = apply(definition, None, Start(on=today))
    case = Case(
        reference=await next_reference(session, journey_id, today.year),
        journey_id=definition.id,
        journey_version=definition.version,
        agency_id=owner,
        party_id=party.id,
        title=definition.title.get("nl"),
        stage=outcome.state.stage,
        state={},
        opened_channel=channel,
    )
    _mirror_state(case, outcome.state, definition, today)
    session.add(case)
    await session.flush()
    for agency_id in definition.participating_agencies:
        if await session.get(Agency, agency_id) is not None:
            session.add(CaseParticipant(case_id=case.id, agency_id=agency_id))
    await _carry_out(
        session,
        case=case,
        party=party,
        definition=definition,
        effects=outcome.effects,
        actor=actor,
        broker=broker,
        timezone=timezone,
        opened={"reference": case.reference, "channel": channel},
    )
    return case


async def act_on_case(
    session: AsyncSession,
    *,
    catalog: Catalog,
    case: Case,
    action: Action,
    actor: Actor,
    broker: Broker | None = None,
    timezone: str = "Europe/Amsterdam",
) -> Case:
    """Apply a journey action to the case; an action the stage does not allow → 409."""
    definition = definition_of(catalog, case)
    try:
        outcome = apply(definition, state_of(case), action)
    except IllegalAction as error:
        raise Conflict(str(error), stage=case.stage, action=action.kind) from None
    _mirror_state(case, outcome.state, definition, action.on)
    session.add(case)
    party = await session.get(Party, case.party_id)
    assert party is not None
    await _carry_out(
        session,
        case=case,
        party=party,
        definition=definition,
        effects=outcome.effects,
        actor=actor,
        broker=broker,
        timezone=timezone,
    )
    return case


def _mirror_state(
    case: Case, state: CaseState, definition: JourneyDefinition, today: dt.date
) -> None:
    case.state = state.model_dump(mode="json")
    case.stage = state.stage
    case.status = state.status
    case.result = state.result
    case.expected_completion = status_view(definition, state, today).expected_completion
    case.updated_at = utcnow()
    if state.status == "closed" and case.closed_at is None:
        case.closed_at = utcnow()


async def _carry_out(
    session: AsyncSession,
    *,
    case: Case,
    party: Party,
    definition: JourneyDefinition,
    effects: Sequence[Any],
    actor: Actor,
    broker: Broker | None,
    timezone: str,
    opened: dict[str, Any] | None = None,
) -> None:
    for effect in effects:
        if isinstance(effect, RecordEvent):
            payload = dict(effect.payload)
            if effect.kind == "case_started" and opened:
                payload.update(opened)
            await append_event(
                session,
                case_id=case.id,
                kind=effect.kind,
                actor=actor,
                payload=payload,
                audience=effect.audience,
                broker=broker,
            )
        elif isinstance(effect, SetTimer):
            await _cancel_timers(session, case.id, effect.kind)
            # A deadline day is the citizen's to the end: the timer fires when the next begins.
            due = start_of_local_day(effect.due_on + dt.timedelta(days=1), timezone)
            session.add(Timer(case_id=case.id, kind=effect.kind, due_at=due))
        elif isinstance(effect, CancelTimer):
            await _cancel_timers(session, case.id, effect.kind)
        elif isinstance(effect, NotifyCitizen):
            await _notify_citizen(session, case, party, definition, effect, timezone)


async def _cancel_timers(session: AsyncSession, case_id: uuid.UUID, kind: str) -> None:
    await session.exec(
        update(Timer)
        .where(
            col(Timer.case_id) == case_id,
            col(Timer.kind) == kind,
            col(Timer.fired_at).is_(None),
            col(Timer.cancelled_at).is_(None),
        )
        .values(cancelled_at=utcnow())
    )


async def _notify_citizen(
    session: AsyncSession,
    case: Case,
    party: Party,
    definition: JourneyDefinition,
    effect: NotifyCitizen,
    timezone: str,
) -> None:
    """Tell the citizen on the channel agreed for this case at the desk ("we'll text you"),
    else the one they prefer, falling back email → SMS → letter when it has no address. A
    citizen who prefers the portal sees it there and gets a mail alert when they have a
    verified address."""
    preferred = await follow_up_channel(session, case.id) or party.preferred_channel
    if preferred in FALLBACK_ORDER or "no_digital_contact" in party.needs:
        target = await route(session, party, preferred)
    else:
        email = await address_for(session, party, "email")
        target = Route("email", email) if email else None
    if target is None:
        return
    lang = party.preferred_language
    view = status_view(definition, state_of(case), local_today(timezone), lang)
    title = definition.title.get(lang)
    subject = f"{title} — {case.reference}"
    lines = [view.now]
    if view.result_text:
        lines = [view.result_text, *(f.text for f in view.follow_ups)]
    elif view.citizen_deadline:
        lines.append(
            ("Please respond before " if lang == "en" else "Reageer vóór ")
            + view.citizen_deadline.isoformat()
        )
    body = "\n\n".join([subject, *lines, view.next if not view.result_text else ""]).strip()
    await send_to_party(
        session,
        case=case,
        party=party,
        target=target,
        body=body,
        subject=subject,
        template=effect.template,
    )


async def cases_of_party(session: AsyncSession, party_id: uuid.UUID) -> list[Case]:
    query = select(Case).where(Case.party_id == party_id).order_by(col(Case.created_at).desc())
    return list((await session.exec(query)).all())


async def cases_of_agency(
    session: AsyncSession, agency_id: str, *, status: str | None = None, limit: int = 100
) -> list[Case]:
    query = select(Case).where(visible_agency_filter(agency_id))  # type: ignore[arg-type]
    if status is not None:
        query = query.where(Case.status == status)
    query = query.order_by(col(Case.updated_at).desc()).limit(limit)
    return list((await session.exec(query)).all())


async def participants(session: AsyncSession, case_id: uuid.UUID) -> list[str]:
    query = select(CaseParticipant.agency_id).where(CaseParticipant.case_id == case_id)
    return list((await session.exec(query)).all())


@dataclass(frozen=True)
class CaseDetails:
    """What a case's answer shows beside the case row: who to contact, who takes part, and
    the language of the party reading it (None when not asked or not found)."""

    agency_name: str | None
    owner_name: str | None
    participants: list[str]
    language: str | None


def _details_statement() -> Any:
    # Built once: composing it per request cost about as much Python as running it. A
    # reader of None compares as NULL, which matches no row. (sqlmodel's select types at most
    # four columns; this is SQLAlchemy's.)
    return (
        sa.select(
            col(Case.id),
            col(Agency.name),
            col(StaffMember.display_name),
            col(Party.preferred_language),
            col(CaseParticipant.agency_id),
        )
        .select_from(Case)
        .outerjoin(Agency, col(Agency.id) == col(Case.agency_id))
        .outerjoin(StaffMember, col(StaffMember.id) == col(Case.owner_id))
        .outerjoin(Party, col(Party.id) == bindparam("party_id"))
        .outerjoin(CaseParticipant, col(CaseParticipant.case_id) == col(Case.id))
        .where(col(Case.id).in_(bindparam("case_ids", expanding=True)))
        .order_by(col(CaseParticipant.agency_id))
    )


_DETAILS = _details_statement()


async def case_details(
    session: AsyncSession, cases: Sequence[Case], *, party_id: uuid.UUID | None = None
) -> dict[uuid.UUID, CaseDetails]:
    """For each case, by id: its agency's name, its owner's name, the agencies taking part
    (by code, in order) and the preferred language of ``party_id``; one statement for all.

    A status read is the hub's most frequent request; asked one by one these were four round
    trips to the database per case (objects loaded while authenticating are not kept for
    reuse), and a list of a hundred cases made three hundred.
    """
    if not cases:
        return {}
    # Run on the connection, past the ORM, so flush what the request added (a new case's
    # participants) as an ORM query would have.
    await session.flush()
    connection = await session.connection()
    params = {"party_id": party_id, "case_ids": [case.id for case in cases]}
    rows = (await connection.execute(_DETAILS, params)).all()
    taking_part: dict[uuid.UUID, list[str]] = {}
    details: dict[uuid.UUID, CaseDetails] = {}
    for case_id, agency_name, owner_name, language, participant in rows:
        if case_id not in details:
            details[case_id] = CaseDetails(
                agency_name=agency_name,
                owner_name=owner_name,
                participants=taking_part.setdefault(case_id, []),
                language=language,
            )
        if participant is not None:
            taking_part[case_id].append(participant)
    for case in cases:
        details.setdefault(case.id, CaseDetails(None, None, [], None))
    return details


def case_status(
    catalog: Catalog,
    case: Case,
    *,
    lang: str = "nl",
    today: dt.date | None = None,
    timezone: str = "Europe/Amsterdam",
) -> StatusView:
    """Where the case stands, computed from its state (stage k of n, next step, dates)."""
    return status_view(
        definition_of(catalog, case), state_of(case), today or local_today(timezone), lang
    )


async def get_case(session: AsyncSession, case_id: uuid.UUID) -> Case:
    case = await session.get(Case, case_id)
    if case is None:
        raise NotFound("No such case.")
    return case
