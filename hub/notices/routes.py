"""Notices API: consent topics and consents, notice templates and their preview, notices.

Agencies manage topics and templates (with their API key, or as admin or supervisor staff)
and post notices with their API key; citizens (or their representatives) answer per topic and
read their notices in the portal.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.access.service import Viewer, record_access, represented_parties
from hub.auth.dependencies import CurrentAgency, CurrentCitizen, CurrentStaffOrAgency
from hub.db import MAX_INTEGER
from hub.dependencies import CatalogDep, SessionDep, SettingsDep
from hub.errors import Forbidden, InvalidInput, NotFound
from hub.messages.segments import count_segments
from hub.models import Agency, Case, Party, ProcessingActivity
from hub.notices.consent import (
    TopicConsent,
    activity_of,
    consent_history,
    consents_of_party,
    get_topic,
    record_consent,
    register_topic,
    topic_by_code,
    topics_of_agency,
)
from hub.notices.schemas import (
    CODE_PATTERN,
    Channel,
    ConsentIn,
    ConsentRecordOut,
    InboxNoticeOut,
    Language,
    NoticeIn,
    NoticeOut,
    PreviewIn,
    PreviewOut,
    TemplateIn,
    TemplateOut,
    TopicConsentOut,
    TopicIn,
    TopicOut,
    template_out,
    topic_out,
)
from hub.notices.service import (
    NoticeRequest,
    inbox,
    mark_read,
    notice_of_agency,
    notice_of_party,
    route_notice,
    save_template,
    template_of_agency,
    templates_of_agency,
)
from hub.notices.templates import placeholders, render
from hub.parties.service import find_party
from journeys.catalog import Catalog

router = APIRouter(prefix="/api", tags=["notices"])

TemplateCode = Annotated[str, Path(pattern=CODE_PATTERN)]
TopicId = Annotated[int, Path(ge=1, le=MAX_INTEGER)]
MANAGING_ROLES = ("admin", "supervisor")


def managing_agency(viewer: Viewer) -> str:
    """The agency whose topics and templates the caller may change."""
    if viewer.agency_id is None:
        raise Forbidden("Only an agency's system or its staff can do this.")
    if viewer.kind == "staff" and viewer.role not in MANAGING_ROLES:
        raise Forbidden("Only an agency's admins and supervisors can do this.")
    return viewer.agency_id


def reading_agency(viewer: Viewer) -> str:
    assert viewer.agency_id is not None  # staff and agency systems always belong to one
    return viewer.agency_id


async def acting_for(session: AsyncSession, viewer: Viewer, party: uuid.UUID | None) -> uuid.UUID:
    """The party whose consents the citizen handles: themselves, or one they represent under
    a general mandate in force (anyone else is 404, as if there were no such party)."""
    assert viewer.party_id is not None
    if party is None or party == viewer.party_id:
        return viewer.party_id
    mandates = await represented_parties(session, viewer.party_id)
    if any(m.party_id == party and m.all_journeys for m in mandates):
        return party
    raise NotFound("No such party.")


# --- consent topics ---------------------------------------------------------------------


@router.post("/consent-topics", status_code=status.HTTP_201_CREATED)
async def create_topic(
    body: TopicIn, viewer: CurrentStaffOrAgency, session: SessionDep
) -> TopicOut:
    """Register a consent topic of the caller's agency under a processing activity of its
    register (422 when the activity is not there, 409 when the code is taken)."""
    agency_id = managing_agency(viewer)
    topic = await register_topic(
        session,
        agency_id=agency_id,
        code=body.code,
        title=body.title.model_dump(),
        activity_code=body.processing_activity,
    )
    return topic_out(topic, body.processing_activity)


@router.get("/consent-topics")
async def list_topics(viewer: CurrentStaffOrAgency, session: SessionDep) -> list[TopicOut]:
    """The caller's agency's consent topics."""
    topics = await topics_of_agency(session, reading_agency(viewer))
    activities = {t.processing_activity_id: await activity_of(session, t) for t in topics}
    return [
        topic_out(t, a.code if (a := activities[t.processing_activity_id]) else None)
        for t in topics
    ]


# --- a party's consents -----------------------------------------------------------------


def consent_rows(answers: list[TopicConsent]) -> list[TopicConsentOut]:
    return [
        TopicConsentOut(
            topic_id=a.topic.id or 0,
            agency_id=a.topic.agency_id,
            code=a.topic.code,
            title=a.topic.title,
            granted=a.granted,
            answered=ConsentRecordOut.of(a.consent) if a.consent else None,
        )
        for a in answers
    ]


@router.get("/me/consents")
async def my_consents(
    viewer: CurrentCitizen,
    session: SessionDep,
    party: Annotated[uuid.UUID | None, Query(description="A party you represent.")] = None,
) -> list[TopicConsentOut]:
    """Every consent topic of every agency with your answer in force and when you gave it."""
    party_id = await acting_for(session, viewer, party)
    answers = await consents_of_party(session, party_id)
    if party_id != viewer.party_id:
        await record_access(session, viewer, party_id=party_id, action="read", data="consents")
    return consent_rows(answers)


@router.put("/me/consents/{topic_id}")
async def set_my_consent(
    topic_id: TopicId,
    body: ConsentIn,
    viewer: CurrentCitizen,
    session: SessionDep,
    party: Annotated[uuid.UUID | None, Query(description="A party you represent.")] = None,
) -> TopicConsentOut:
    """Give or withdraw consent for a topic; the earlier answers stay as its history."""
    party_id = await acting_for(session, viewer, party)
    topic = await get_topic(session, topic_id)
    representing = party_id != viewer.party_id
    consent = await record_consent(
        session,
        party_id=party_id,
        topic=topic,
        granted=body.granted,
        recorded_by_kind="representative" if representing else "citizen",
        recorded_by_id=viewer.id,
        source="portal",
    )
    if representing:
        await record_access(session, viewer, party_id=party_id, action="change", data="consent")
    assert topic.id is not None
    return TopicConsentOut(
        topic_id=topic.id,
        agency_id=topic.agency_id,
        code=topic.code,
        title=topic.title,
        granted=consent.granted,
        answered=ConsentRecordOut.of(consent),
    )


async def log_consent_read(
    session: AsyncSession,
    viewer: Viewer,
    *,
    party_id: uuid.UUID,
    data: str,
    activities: list[ProcessingActivity | None],
) -> None:
    """One access log line per processing activity the read falls under."""
    seen: set[int | None] = set()
    for activity in activities or [None]:
        key = activity.id if activity else None
        if key in seen:
            continue
        seen.add(key)
        await record_access(
            session, viewer, party_id=party_id, action="read", data=data, activity=activity
        )


async def existing_party(session: AsyncSession, party_id: uuid.UUID) -> Party:
    party = await session.get(Party, party_id)
    if party is None:
        raise NotFound("No such party.")
    return party


@router.get("/parties/{party_id}/consents")
async def party_consents(
    party_id: uuid.UUID, viewer: CurrentStaffOrAgency, session: SessionDep
) -> list[TopicConsentOut]:
    """The party's answers for the caller's agency's topics (no other agency's), logged in
    the party's access log under each topic's processing activity."""
    agency_id = reading_agency(viewer)
    await existing_party(session, party_id)
    answers = await consents_of_party(session, party_id, agency_id=agency_id)
    await log_consent_read(
        session,
        viewer,
        party_id=party_id,
        data="consents",
        activities=[await activity_of(session, a.topic) for a in answers],
    )
    return consent_rows(answers)


@router.get("/parties/{party_id}/consents/{topic_id}/history")
async def party_consent_history(
    party_id: uuid.UUID, topic_id: TopicId, viewer: CurrentStaffOrAgency, session: SessionDep
) -> list[ConsentRecordOut]:
    """Every answer the party gave for one of the caller's agency's topics, oldest first."""
    agency_id = reading_agency(viewer)
    await existing_party(session, party_id)
    topic = await get_topic(session, topic_id)
    if topic.agency_id != agency_id:
        raise NotFound("No such consent topic.")
    history = await consent_history(session, party_id=party_id, topic_id=topic_id)
    await log_consent_read(
        session,
        viewer,
        party_id=party_id,
        data="consent_history",
        activities=[await activity_of(session, topic)],
    )
    return [ConsentRecordOut.of(c) for c in history]


# --- templates ----------------------------------------------------------------------------


@router.put("/notice-templates/{code}/{channel}/{language}")
async def put_template(
    code: TemplateCode,
    channel: Channel,
    language: Language,
    body: TemplateIn,
    viewer: CurrentStaffOrAgency,
    session: SessionDep,
) -> TemplateOut:
    """Create or replace a template; 422 naming the line when it does not parse."""
    template = await save_template(
        session,
        agency_id=managing_agency(viewer),
        code=code,
        channel=channel,
        language=language,
        subject=body.subject,
        body=body.body,
    )
    names = sorted(placeholders(subject=template.subject, body=template.body))
    return template_out(template, names)


@router.get("/notice-templates")
async def list_templates(viewer: CurrentStaffOrAgency, session: SessionDep) -> list[TemplateOut]:
    """The caller's agency's templates, each with the placeholders it needs."""
    templates = await templates_of_agency(session, reading_agency(viewer))
    return [
        template_out(t, sorted(placeholders(subject=t.subject, body=t.body))) for t in templates
    ]


@router.post("/notice-templates/{code}/preview")
async def preview_template(
    code: TemplateCode, body: PreviewIn, viewer: CurrentStaffOrAgency, session: SessionDep
) -> PreviewOut:
    """The template filled in with ``personalisation``, or 422 listing every placeholder
    not given (``missing``). A text's preview says how many SMS parts it takes."""
    template = await template_of_agency(
        session,
        agency_id=reading_agency(viewer),
        code=code,
        channel=body.channel,
        language=body.language,
    )
    rendered = render(subject=template.subject, body=template.body, values=body.personalisation)
    preview = PreviewOut(subject=rendered.subject, body=rendered.body)
    if body.channel == "sms":
        count = count_segments(rendered.body)
        preview.segments, preview.encoding = count.segments, count.encoding
    return preview


# --- notices ----------------------------------------------------------------------------------


async def notice_request(
    session: AsyncSession, agency_id: str, body: NoticeIn, catalog: Catalog
) -> NoticeRequest:
    """The posted notice resolved to rows; 422 for anything unknown."""
    agency = await session.get(Agency, agency_id)
    assert agency is not None
    party = await find_party(session, bsn=body.bsn, kvk_number=body.kvk_number)
    if party is None:
        raise InvalidInput("No party is known by this identifier.")
    topic = await topic_by_code(session, agency_id=agency_id, code=body.topic)
    if topic is None:
        raise InvalidInput(f"Agency '{agency_id}' has no consent topic '{body.topic}'.")
    if body.journey_id is not None and not catalog.versions(body.journey_id):
        raise InvalidInput(f"There is no journey '{body.journey_id}'.")
    case: Case | None = None
    if body.case_id is not None:
        case = await session.get(Case, body.case_id)
        if case is None or case.agency_id != agency_id or case.party_id != party.id:
            raise InvalidInput("The case is not one of this agency's cases of this party.")
    if body.escalate_after_days is not None and not body.important:
        raise InvalidInput("Only an important notice can be escalated.")
    return NoticeRequest(
        agency=agency,
        party=party,
        topic=topic,
        template_code=body.template,
        personalisation=body.personalisation,
        journey_id=body.journey_id,
        case=case,
        important=body.important,
        escalate_after_days=body.escalate_after_days,
        dedupe_key=body.dedupe_key,
    )


@router.post("/notices", status_code=status.HTTP_201_CREATED)
async def post_notice(
    body: NoticeIn,
    viewer: CurrentAgency,
    session: SessionDep,
    settings: SettingsDep,
    catalog: CatalogDep,
    response: Response,
) -> NoticeOut:
    """Send a notice to one party (by BSN or KvK number), if they consented to the topic.

    201 with the new notice — ``not-sent`` with its ``reason`` when there is no consent or
    the party's daily cap is reached — or 200 with the notice already made for the same
    ``dedupe_key`` (nothing is sent again). 422, with nothing stored, when a placeholder of
    the template is not given.
    """
    request = await notice_request(session, reading_agency(viewer), body, catalog)
    routed = await route_notice(
        session, request, timezone=settings.timezone, base_url=settings.base_url
    )
    if not routed.created:
        response.status_code = status.HTTP_200_OK
    return NoticeOut.of(routed.notice)


@router.get("/notices/{notice_id}")
async def get_notice(
    notice_id: uuid.UUID, viewer: CurrentStaffOrAgency, session: SessionDep
) -> NoticeOut:
    """One of the agency's notices: its status, channel, the reason it was not sent, and
    when the citizen read it."""
    notice = await notice_of_agency(session, agency_id=reading_agency(viewer), notice_id=notice_id)
    if notice.party_id is not None:
        topic = await get_topic(session, notice.topic_id)
        await record_access(
            session,
            viewer,
            party_id=notice.party_id,
            action="read",
            data="notice",
            activity=await activity_of(session, topic),
        )
    return NoticeOut.of(notice)


@router.get("/me/notices")
async def my_notices(viewer: CurrentCitizen, session: SessionDep) -> list[InboxNoticeOut]:
    """Your notices from agencies, newest first, with whether you read them."""
    assert viewer.party_id is not None
    return [InboxNoticeOut.of(n) for n in await inbox(session, viewer.party_id)]


@router.post("/me/notices/{notice_id}/read")
async def read_notice(
    notice_id: uuid.UUID, viewer: CurrentCitizen, session: SessionDep
) -> InboxNoticeOut:
    """Mark your notice read (the first time counts); the link in a notice's mail leads here."""
    assert viewer.party_id is not None
    notice = await notice_of_party(session, party_id=viewer.party_id, notice_id=notice_id)
    return InboxNoticeOut.of(await mark_read(session, notice))
