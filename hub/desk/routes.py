"""The counter desk, for staff: find the visitor and their cases across agencies, record the
visit with the identity document checked, and say which channel the follow-up takes.

Acting on a case at the desk is the case API's ``POST /api/cases/{id}/actions``; the desk
adds nothing to it.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.access.service import Viewer, case_for_viewer, record_access, require_activity
from hub.auth.dependencies import CurrentStaff
from hub.cases.schemas import EventOut
from hub.cases.service import cases_of_party, definition_of, record_case_access
from hub.dependencies import BrokerDep, CatalogDep, SessionDep
from hub.desk import service
from hub.desk.schemas import (
    AddressOut,
    DeskCase,
    DeskFound,
    DeskSearch,
    FollowUpIn,
    FollowUpOut,
    PartyCard,
    RepresentativeOut,
    Timeline,
    VisitIn,
)
from hub.errors import NotFound
from hub.events.service import events_after
from hub.messages.schemas import MAX_MESSAGE_CHARS, MAX_SUBJECT_CHARS, MessageOut, checked_text
from hub.messages.thread import posted_message_out, read_thread
from hub.models import Agency, Case, Party
from journeys.catalog import Catalog
from journeys.model import UnknownStage

router = APIRouter(prefix="/api/desk", tags=["desk"])

TIMELINE_LIMIT = 5_000


async def _party_card(session: AsyncSession, party: Party, *, contact: bool) -> PartyCard:
    """The visitor; their addresses only for a desk whose agency may see one of their cases
    (``contact``): to any other, who they are and where their cases stand, not how to reach
    them."""
    addresses = await service.verified_addresses(session, party.id) if contact else []
    return PartyCard(
        id=party.id,
        kind=party.kind,
        name=party.name,
        date_of_birth=party.date_of_birth,
        kvk_number=party.kvk_number,
        verified_addresses=[
            AddressOut(kind=a.kind, value=a.value, texts_stopped=a.opted_out_at is not None)
            for a in addresses
        ],
        postal_address=party.postal_address if contact else None,
        contact_shown=contact,
        preferred_channel=party.preferred_channel,
        preferred_language=party.preferred_language,
        needs=party.needs,
        representatives=[
            RepresentativeOut(
                party_id=representative.id,
                name=representative.name,
                journeys=None if mandate.all_journeys else mandate.journeys,
                valid_until=mandate.valid_until,
            )
            for mandate, representative in await service.representatives(session, party.id)
        ],
    )


async def _desk_case(
    session: AsyncSession,
    viewer: Viewer,
    case: Case,
    *,
    catalog: Catalog,
    agencies: dict[str, str],
) -> DeskCase:
    definition = definition_of(catalog, case)
    try:
        stage_name = definition.stage(case.stage).name.get("nl")
    except UnknownStage:
        stage_name = case.stage
    timeline: Timeline | None = None
    try:
        await case_for_viewer(session, viewer, case.id)
    except NotFound:
        pass
    else:
        events = await events_after(
            session, case.id, 0, audiences=viewer.audiences, limit=TIMELINE_LIMIT
        )
        timeline = Timeline(
            events=[EventOut.of(event) for event in events],
            messages=await read_thread(session, case, staff_view=True),
        )
        await record_access(
            session,
            viewer,
            party_id=case.party_id,
            action="read",
            data="timeline",
            case=case,
            activity_code=definition.processing_activity,
        )
    return DeskCase(
        id=case.id,
        reference=case.reference,
        title=definition.title.get("nl"),
        agency=case.agency_id,
        agency_name=agencies.get(case.agency_id, case.agency_id),
        stage=case.stage,
        stage_name=stage_name,
        status=case.status,
        visible=timeline is not None,
        timeline=timeline,
    )


@router.post("/search")
async def search(
    body: DeskSearch, staff: CurrentStaff, session: SessionDep, catalog: CatalogDep
) -> DeskFound:
    """Find the visitor by BSN or KvK number, a case reference, or name with date of birth.

    The answer: who they are (addresses, preferences, needs, representatives) and all their
    cases across agencies — title, agency, stage — with the full timeline of those the
    staff member's agency may see. The purpose must be a processing activity in the agency's
    register; the search and every timeline shown are written to the citizen's access log.
    """
    assert staff.agency_id is not None
    activity = await require_activity(session, agency_id=staff.agency_id, code=body.purpose)
    party = await service.find_visitor(
        session,
        bsn=body.bsn,
        kvk_number=body.kvk_number,
        case_reference=body.case_reference,
        name=body.name,
        date_of_birth=body.date_of_birth,
    )
    if party is None:
        raise NotFound("No party found.")
    await record_access(
        session,
        staff,
        party_id=party.id,
        action="search",
        data="party,case_list",
        activity=activity,
    )
    agencies = {a.id: a.name for a in (await session.exec(select(Agency))).all()}
    cases = [
        await _desk_case(session, staff, case, catalog=catalog, agencies=agencies)
        for case in await cases_of_party(session, party.id)
    ]
    contact = any(case.visible for case in cases)
    return DeskFound(party=await _party_card(session, party, contact=contact), cases=cases)


@router.post("/cases/{case_id}/visits", status_code=status.HTTP_201_CREATED)
async def record_visit(
    case_id: uuid.UUID,
    body: VisitIn,
    staff: CurrentStaff,
    session: SessionDep,
    catalog: CatalogDep,
    broker: BrokerDep,
) -> MessageOut:
    """Record a visit on the case's thread: what was discussed and the identity document
    that was checked. The visit is a message on the "counter" channel."""
    case, _ = await case_for_viewer(session, staff, case_id, for_update=True)
    summary = (
        checked_text(body.summary, what="summary", limit=MAX_MESSAGE_CHARS)
        if body.summary is not None
        else None
    )
    message = await service.record_visit(
        session,
        case=case,
        staff=staff.actor(),
        topic=checked_text(body.topic, what="topic", limit=MAX_SUBJECT_CHARS),
        summary=summary,
        identity_document=body.identity_document,
        broker=broker,
    )
    await record_case_access(session, staff, case, catalog, action="change", data="visit")
    return await posted_message_out(session, message, staff_view=True)


@router.post("/cases/{case_id}/follow-up", status_code=status.HTTP_201_CREATED)
async def hand_follow_up(
    case_id: uuid.UUID,
    body: FollowUpIn,
    staff: CurrentStaff,
    session: SessionDep,
    catalog: CatalogDep,
    broker: BrokerDep,
) -> FollowUpOut:
    """Hand the follow-up to another channel ("we'll text you when it's decided"): recorded
    on the case for the citizen to read; refused when the party has no address on it."""
    case, _ = await case_for_viewer(session, staff, case_id, for_update=True)
    event = await service.hand_follow_up(
        session, case=case, channel=body.channel, actor=staff.actor(), broker=broker
    )
    await record_case_access(session, staff, case, catalog, action="change", data="follow_up")
    return FollowUpOut(
        case_id=case.id, channel=body.channel, text=event.payload["text"], seq=event.seq
    )
