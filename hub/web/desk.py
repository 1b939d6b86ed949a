"""Counter-desk mode for staff: look a citizen up, record the visit, print the status summary.

The lookup is a form that posts the BSN, or a name with the date of birth, or a case number,
and a purpose from the agency's register: identifiers travel in the body, never in a URL
(servers log URLs), and the answer is the page itself. "No wrong door": any agency's desk
sees who the visitor is and the list of their cases (title, agency, stage); only a case the
agency may see opens at the desk. The search, each desk view of a case and each summary
printed are written to the citizen's access log.
"""

from __future__ import annotations

import datetime as dt
import uuid

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.access.service import (
    Viewer,
    agency_takes_part,
    case_for_viewer,
    record_access,
    require_activity,
)
from hub.cases.service import (
    case_status,
    cases_of_party,
    definition_of,
    record_case_access,
    state_of,
)
from hub.clock import local_today
from hub.config import Settings
from hub.dependencies import BrokerDep, CatalogDep, SessionDep, SettingsDep
from hub.desk import service
from hub.errors import Conflict, InvalidInput
from hub.messages.schemas import MAX_MESSAGE_CHARS, MAX_SUBJECT_CHARS, checked_text
from hub.models import Agency, Case, Party, ProcessingActivity, StaffMember
from hub.web.console import representatives_shown
from hub.web.i18n import mark
from hub.web.pages import StaffPage, page_language, page_router, posted_form, render
from journeys.catalog import Catalog
from journeys.model import UnknownStage

router = page_router()

GIVE_A_KEY = mark("Fill in a BSN, or a name with a date of birth, or a case number.")
NAME_NEEDS_BIRTH = mark("A search by name needs the date of birth too.")
BAD_DATE = mark("Write the date of birth as day, month and year.")
CHOOSE_PURPOSE = mark("Choose why you look this person up.")
NOBODY_FOUND = mark("We found nobody with these details. Check them and try again.")
SEVERAL_FOUND = mark(
    "Several people have this name and date of birth. Search by BSN or a case number."
)
CHOOSE_DOCUMENT = mark("Choose the identity document you checked.")
GIVE_A_TOPIC = mark("Write what the visit was about.")
NO_ADDRESS = mark("The citizen has no checked address for this channel. Choose another one.")
FOLLOW_UP_CHANNELS = ("email", "sms", "letter")


async def _activities(session: AsyncSession, viewer: Viewer) -> list[ProcessingActivity]:
    assert viewer.agency_id is not None
    query = (
        select(ProcessingActivity)
        .where(ProcessingActivity.agency_id == viewer.agency_id)
        .order_by(col(ProcessingActivity.purpose))
    )
    return list((await session.exec(query)).all())


async def _search_page(
    request: Request,
    viewer: Viewer,
    session: AsyncSession,
    *,
    fields: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "pages/desk.html",
        {
            "activities": await _activities(session, viewer),
            # What was typed comes back after an error, except the BSN: it is not shown again.
            "fields": {k: v for k, v in (fields or {}).items() if k != "bsn"},
            "error": error,
        },
        status_code=status_code,
        viewer=viewer,
    )


@router.get("/console/desk", response_class=HTMLResponse)
async def desk_page(request: Request, viewer: StaffPage, session: SessionDep) -> Response:
    """The desk's search: who is at the counter, and why the staff member looks them up."""
    return await _search_page(request, viewer, session)


def _search_key(fields: dict[str, str]) -> dict[str, object]:
    """The one key the form gives, as ``find_visitor`` takes it; InvalidInput names what
    is missing (a page text)."""
    bsn = "".join(fields.get("bsn", "").split())[:20]
    reference = fields.get("case_reference", "").strip()[:32]
    name = " ".join(fields.get("name", "").split())[:300]
    born = fields.get("date_of_birth", "").strip()
    if bsn:
        return {"bsn": bsn}
    if reference:
        return {"case_reference": reference}
    if name or born:
        if not (name and born):
            raise InvalidInput(NAME_NEEDS_BIRTH)
        try:
            date_of_birth = dt.date.fromisoformat(born)
        except ValueError:
            raise InvalidInput(BAD_DATE) from None
        return {"name": name, "date_of_birth": date_of_birth}
    raise InvalidInput(GIVE_A_KEY)


@router.post("/console/desk/search", response_class=HTMLResponse)
async def search(
    request: Request,
    viewer: StaffPage,
    session: SessionDep,
    catalog: CatalogDep,
    settings: SettingsDep,
) -> Response:
    """Find the visitor: who they are and all their cases across agencies. The search is
    written to their access log under the purpose chosen."""
    fields = await posted_form(request, settings)
    assert viewer.agency_id is not None

    async def again(error: str, status_code: int) -> HTMLResponse:
        return await _search_page(
            request, viewer, session, fields=fields, error=error, status_code=status_code
        )

    try:
        key = _search_key(fields)
    except InvalidInput as refused:
        return await again(str(refused), 422)
    try:
        activity = await require_activity(
            session, agency_id=viewer.agency_id, code=fields.get("purpose", "")[:100]
        )
    except InvalidInput:
        return await again(CHOOSE_PURPOSE, 422)
    try:
        party = await service.find_visitor(session, **key)  # type: ignore[arg-type]
    except InvalidInput:
        party = None
    except Conflict:
        return await again(SEVERAL_FOUND, 409)
    if party is None:
        return await again(NOBODY_FOUND, 404)
    await record_access(
        session,
        viewer,
        party_id=party.id,
        action="search",
        data="party,case_list",
        activity=activity,
    )
    lang = page_language(request)
    agencies = {a.id: a.name for a in (await session.exec(select(Agency))).all()}
    found = []
    for case in await cases_of_party(session, party.id):
        definition = definition_of(catalog, case)
        try:
            stage = definition.stage(case.stage).name.get(lang)
        except UnknownStage:
            stage = case.stage
        found.append(
            {
                "case": case,
                "title": definition.title.get(lang),
                "agency": agencies.get(case.agency_id, case.agency_id),
                "stage": stage,
                "visible": await agency_takes_part(session, case, viewer.agency_id),
            }
        )
    # How to reach the visitor only for an agency that may see one of their cases.
    contact_shown = any(item["visible"] for item in found)
    return render(
        request,
        "pages/desk_found.html",
        {
            "party": party,
            "contact_shown": contact_shown,
            "addresses": await service.verified_addresses(session, party.id)
            if contact_shown
            else [],
            "representatives": await representatives_shown(session, catalog, party.id, lang),
            "cases": found,
        },
        viewer=viewer,
    )


async def _case_page(
    request: Request,
    *,
    viewer: Viewer,
    session: AsyncSession,
    catalog: Catalog,
    settings: Settings,
    case: Case,
    error: str | None = None,
    error_form: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    await record_case_access(session, viewer, case, catalog, action="read", data="case")
    lang = page_language(request)
    party = await session.get(Party, case.party_id)
    agency = await session.get(Agency, case.agency_id)
    assert party is not None
    return render(
        request,
        "pages/desk_case.html",
        {
            "case": case,
            "party": party,
            "title": definition_of(catalog, case).title.get(lang),
            "agency": agency.name if agency else case.agency_id,
            "view": case_status(catalog, case, lang=lang, timezone=settings.timezone),
            "documents": service.IDENTITY_DOCUMENTS,
            "channels": FOLLOW_UP_CHANNELS,
            "follow_up": await service.follow_up_channel(session, case.id),
            "error": error,
            "error_form": error_form,
            "done": request.query_params.get("done"),
        },
        status_code=status_code,
        viewer=viewer,
    )


@router.get("/console/desk/cases/{case_id}", response_class=HTMLResponse)
async def desk_case(
    case_id: uuid.UUID,
    request: Request,
    viewer: StaffPage,
    session: SessionDep,
    catalog: CatalogDep,
    settings: SettingsDep,
) -> Response:
    """One case at the desk: where it stands, the visit to record, how news will reach the
    citizen, and the status summary to print."""
    case, _ = await case_for_viewer(session, viewer, case_id)
    return await _case_page(
        request, viewer=viewer, session=session, catalog=catalog, settings=settings, case=case
    )


@router.post("/console/desk/cases/{case_id}/visits", response_class=HTMLResponse)
async def record_visit(
    case_id: uuid.UUID,
    request: Request,
    viewer: StaffPage,
    session: SessionDep,
    catalog: CatalogDep,
    broker: BrokerDep,
    settings: SettingsDep,
) -> Response:
    """Record the visit on the case's thread, with the identity document checked; without
    one the visit is not recorded."""
    fields = await posted_form(request, settings)
    case, _ = await case_for_viewer(session, viewer, case_id, for_update=True)
    topic = fields.get("topic", "").strip()
    document = fields.get("identity_document", "")
    error = (
        GIVE_A_TOPIC
        if not topic
        else CHOOSE_DOCUMENT
        if document not in service.IDENTITY_DOCUMENTS
        else None
    )
    if error is not None:
        return await _case_page(
            request,
            viewer=viewer,
            session=session,
            catalog=catalog,
            settings=settings,
            case=case,
            error=error,
            error_form="visit",
            status_code=422,
        )
    summary = fields.get("summary", "").strip()
    await service.record_visit(
        session,
        case=case,
        staff=viewer.actor(),
        topic=checked_text(topic, what="topic", limit=MAX_SUBJECT_CHARS),
        summary=checked_text(summary, what="summary", limit=MAX_MESSAGE_CHARS) if summary else None,
        identity_document=document,
        broker=broker,
    )
    await record_case_access(session, viewer, case, catalog, action="change", data="visit")
    return RedirectResponse(f"/console/desk/cases/{case.id}?done=visit", status_code=303)


@router.post("/console/desk/cases/{case_id}/follow-up", response_class=HTMLResponse)
async def hand_follow_up(
    case_id: uuid.UUID,
    request: Request,
    viewer: StaffPage,
    session: SessionDep,
    catalog: CatalogDep,
    broker: BrokerDep,
    settings: SettingsDep,
) -> Response:
    """Say which channel news on the case takes ("we'll text you"): recorded on the case for
    the citizen; refused when the citizen has no usable address on it."""
    fields = await posted_form(request, settings)
    case, _ = await case_for_viewer(session, viewer, case_id, for_update=True)
    try:
        await service.hand_follow_up(
            session,
            case=case,
            channel=fields.get("channel", ""),
            actor=viewer.actor(),
            broker=broker,
        )
    except InvalidInput:
        return await _case_page(
            request,
            viewer=viewer,
            session=session,
            catalog=catalog,
            settings=settings,
            case=case,
            error=NO_ADDRESS,
            error_form="follow_up",
            status_code=422,
        )
    await record_case_access(session, viewer, case, catalog, action="change", data="follow_up")
    return RedirectResponse(f"/console/desk/cases/{case.id}?done=follow_up", status_code=303)


@router.get("/console/desk/cases/{case_id}/summary", response_class=HTMLResponse)
async def status_summary(
    case_id: uuid.UUID,
    request: Request,
    viewer: StaffPage,
    session: SessionDep,
    catalog: CatalogDep,
    settings: SettingsDep,
) -> Response:
    """Where the case stands, as a page to print and hand over at the counter: the steps,
    what happens now and next, the dates, whose turn it is, and whom to contact."""
    case, _ = await case_for_viewer(session, viewer, case_id)
    definition = definition_of(catalog, case)
    await record_access(
        session,
        viewer,
        party_id=case.party_id,
        action="read",
        data="status_summary",
        case=case,
        activity_code=definition.processing_activity,
    )
    lang = page_language(request)
    party = await session.get(Party, case.party_id)
    agency = await session.get(Agency, case.agency_id)
    owner = await session.get(StaffMember, case.owner_id) if case.owner_id else None
    assert party is not None
    today = local_today(settings.timezone)
    return render(
        request,
        "pages/desk_summary.html",
        {
            "case": case,
            "party": party,
            "title": definition.title.get(lang),
            "agency": agency.name if agency else case.agency_id,
            "contact": owner.display_name if owner else None,
            "view": case_status(catalog, case, lang=lang, today=today, timezone=settings.timezone),
            "started_on": state_of(case).started_on,
            "today": today,
            "portal_url": f"{settings.base_url.rstrip('/')}/cases/{case.id}",
        },
        viewer=viewer,
    )
