"""The case API: open a case, act on it, read it, its status and its events."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.access.service import Viewer, case_for_viewer, record_access, represented_parties
from hub.auth.dependencies import CurrentCitizen, CurrentStaffOrAgency, CurrentViewer
from hub.cases import service, status_read
from hub.cases.schemas import (
    ActionIn,
    CaseOpen,
    CaseOut,
    CaseRecord,
    ContactOut,
    EventOut,
    EventsOut,
)
from hub.clock import local_today
from hub.db import MAX_INTEGER
from hub.dependencies import BrokerDep, CatalogDep, SessionDep, SettingsDep
from hub.errors import InvalidInput, NotFound
from hub.events.service import append_event, events_after
from hub.messages.schemas import checked_text
from hub.models import Case, Party
from hub.parties.service import find_or_create_party
from journeys.catalog import Catalog
from journeys.engine import CaseState, parse_action, status_view

router = APIRouter(prefix="/api", tags=["cases"])

CITIZEN_ACTIONS = {"provide_information", "withdraw"}


async def _case_out(
    session: AsyncSession,
    case: Case,
    *,
    catalog: Any,
    lang: str | None,
    timezone: str,
    reader: uuid.UUID | None = None,
) -> CaseOut:
    """The case as answered: in ``lang`` when given, else in the language ``reader`` (a
    party) prefers, else in Dutch."""
    details = await service.case_details(session, [case], party_id=None if lang else reader)
    return _answer(
        case,
        service.state_of(case),
        details[case.id],
        catalog,
        lang or details[case.id].language,
        timezone,
    )


async def _cases_out(
    session: AsyncSession, cases: list[Case], *, catalog: Any, lang: str, timezone: str
) -> list[CaseOut]:
    details = await service.case_details(session, cases)
    return [
        _answer(case, service.state_of(case), details[case.id], catalog, lang, timezone)
        for case in cases
    ]


def _answer(
    case: CaseRecord,
    state: CaseState,
    details: service.CaseDetails,
    catalog: Catalog,
    lang: str | None,
    timezone: str,
) -> CaseOut:
    language = lang or "nl"
    definition = catalog.get(case.journey_id, case.journey_version)
    return CaseOut.of(
        case,
        contact=ContactOut(
            name=details.owner_name,
            agency=case.agency_id,
            agency_name=details.agency_name or case.agency_id,
        ),
        participants=details.participants,
        view=status_view(definition, state, local_today(timezone), language),
        title=definition.title.get(language),
    )


async def _language(session: AsyncSession, viewer: Viewer, lang: str | None) -> str:
    if lang in ("nl", "en"):
        return lang
    if viewer.party_id is not None:
        party = await session.get(Party, viewer.party_id)
        if party is not None:
            return party.preferred_language
    return "nl"


Lang = Annotated[str | None, Query(pattern="^(nl|en)$", description="nl (default) or en")]


@router.post("/cases", status_code=status.HTTP_201_CREATED)
async def open_case(
    body: CaseOpen,
    viewer: CurrentStaffOrAgency,
    session: SessionDep,
    catalog: CatalogDep,
    broker: BrokerDep,
    settings: SettingsDep,
) -> CaseOut:
    """Open a case of one of the caller's agency's journeys for a party (found or created)."""
    party = await find_or_create_party(
        session,
        name=body.party.name,
        bsn=body.party.bsn,
        kvk_number=body.party.kvk_number,
        email=body.party.email,
        phone=body.party.phone,
    )
    case = await service.open_case(
        session,
        catalog=catalog,
        journey_id=body.journey,
        party=party,
        actor=viewer.actor(),
        channel=body.channel,
        broker=broker,
        timezone=settings.timezone,
    )
    await record_access(
        session,
        viewer,
        party_id=party.id,
        action="change",
        data="case",
        case=case,
        activity_code=service.definition_of(catalog, case).processing_activity,
    )
    return await _case_out(session, case, catalog=catalog, lang="nl", timezone=settings.timezone)


@router.get("/cases")
async def list_cases(
    viewer: CurrentViewer,
    session: SessionDep,
    catalog: CatalogDep,
    settings: SettingsDep,
    lang: Lang = None,
    status_filter: Annotated[str | None, Query(alias="status")] = None,
) -> list[CaseOut]:
    """Cases the caller may see: a citizen's own (all agencies, one portal); for staff and
    agency systems, the cases their agency owns or takes part in."""
    language = await _language(session, viewer, lang)
    if viewer.kind == "citizen":
        assert viewer.party_id is not None
        cases = await service.cases_of_party(session, viewer.party_id)
    else:
        assert viewer.agency_id is not None
        cases = await service.cases_of_agency(session, viewer.agency_id, status=status_filter)
    return await _cases_out(
        session, cases, catalog=catalog, lang=language, timezone=settings.timezone
    )


class OwnCaseFirst(APIRoute):
    """``GET /api/cases/{id}`` answered on the hot path when it applies, else as declared.

    A citizen reading their own case with a session token, on PostgreSQL, in the usual
    spelling (the case id as ``str(uuid)`` writes it, no query or ``lang=nl``/``lang=en``):
    :func:`hub.cases.status_read.own_case` reads all of it in one statement, and the answer
    is built as :func:`read_case` builds it. Anything else, and any case the statement does
    not find, goes through :func:`read_case` with its dependencies, which decides (401, 404,
    422) and writes the access log. The hot path runs none of the route's dependencies, so
    one added to the route or its router must be added here too if it concerns this read.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        declared = super().get_route_handler()

        async def handler(request: Request) -> Response:
            query = request.scope["query_string"]
            own = await status_read.own_case(request) if query in _PLAIN_QUERIES else None
            if own is None:
                return await declared(request)
            lang = _PLAIN_QUERIES[query]
            state = request.app.state
            answer = _answer(
                own,
                own.state,
                own.details,
                state.catalog,
                lang or own.details.language,
                state.settings.timezone,
            )
            return Response(answer.model_dump_json(), media_type="application/json")

        return handler


# The query strings the hot path reads, and the ``lang`` each asks for.
_PLAIN_QUERIES: dict[bytes, str | None] = {b"": None, b"lang=nl": "nl", b"lang=en": "en"}


async def read_case(
    case_id: uuid.UUID,
    viewer: CurrentViewer,
    session: SessionDep,
    catalog: CatalogDep,
    settings: SettingsDep,
    lang: Lang = None,
) -> CaseOut:
    """One case with its status view: stage k of n, whose turn, what next, expected date."""
    case, _ = await case_for_viewer(session, viewer, case_id)
    await service.record_case_access(session, viewer, case, catalog, action="read", data="case")
    return await _case_out(
        session,
        case,
        catalog=catalog,
        lang=lang,
        timezone=settings.timezone,
        reader=viewer.party_id,
    )


router.add_api_route(
    "/cases/{case_id}", read_case, methods=["GET"], route_class_override=OwnCaseFirst
)


@router.post("/cases/{case_id}/actions")
async def act_on_case(
    case_id: uuid.UUID,
    body: ActionIn,
    viewer: CurrentViewer,
    session: SessionDep,
    catalog: CatalogDep,
    broker: BrokerDep,
    settings: SettingsDep,
) -> CaseOut:
    """Apply a journey action. Citizens (and their representatives) may provide information
    and withdraw; staff and agency systems may take every action the stage allows."""
    case, representing = await case_for_viewer(session, viewer, case_id, for_update=True)
    if viewer.kind == "citizen" and body.kind not in CITIZEN_ACTIONS:
        raise NotFound("No such action for a citizen on this case.")
    raw = body.model_dump(exclude_none=True)
    raw.setdefault("on", local_today(settings.timezone))
    try:
        action = parse_action(raw)
    except ValidationError as error:
        raise InvalidInput(
            "The action is not valid.",
            errors=[{"loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors()],
        ) from None
    case = await service.act_on_case(
        session,
        catalog=catalog,
        case=case,
        action=action,
        actor=viewer.actor(representing=representing),
        broker=broker,
        timezone=settings.timezone,
    )
    await service.record_case_access(session, viewer, case, catalog, action="change", data="case")
    return await _case_out(
        session,
        case,
        catalog=catalog,
        lang=None,
        timezone=settings.timezone,
        reader=viewer.party_id,
    )


@router.get("/cases/{case_id}/events")
async def case_events(
    case_id: uuid.UUID,
    viewer: CurrentViewer,
    session: SessionDep,
    catalog: CatalogDep,
    after: Annotated[
        int, Query(ge=0, le=MAX_INTEGER, description="Last sequence number seen; 0 for all.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> EventsOut:
    """The case's events with a sequence number above ``after``, in order, filtered by what
    the caller may see (citizens never see staff-only notes)."""
    case, _ = await case_for_viewer(session, viewer, case_id)
    events = await events_after(
        session, case.id, after, audiences=viewer.audiences, limit=limit + 1
    )
    await service.record_case_access(session, viewer, case, catalog, action="read", data="timeline")
    more = len(events) > limit
    events = events[:limit]
    return EventsOut(
        case_id=case.id,
        events=[EventOut.of(e) for e in events],
        last_seq=events[-1].seq if events else after,
        more=more,
    )


@router.get("/me/cases")
async def my_cases(
    citizen: CurrentCitizen,
    session: SessionDep,
    catalog: CatalogDep,
    settings: SettingsDep,
    lang: Lang = None,
    party: Annotated[
        uuid.UUID | None,
        Query(description="A party the caller represents: their cases within the mandate."),
    ] = None,
) -> list[CaseOut]:
    """All of the citizen's cases across agencies, each with where it stands — or, with
    ``party``, the cases of someone they represent that their mandates cover."""
    assert citizen.party_id is not None
    language = await _language(session, citizen, lang)
    if party is None or party == citizen.party_id:
        cases = await service.cases_of_party(session, citizen.party_id)
    else:
        mandates = [
            m for m in await represented_parties(session, citizen.party_id) if m.party_id == party
        ]
        if not mandates:
            raise NotFound("You do not represent this party.")
        cases = [
            case
            for case in await service.cases_of_party(session, party)
            if any(m.covers(case.journey_id) for m in mandates)
        ]
        for case in cases:
            await record_access(
                session, citizen, party_id=party, action="read", data="case", case=case
            )
    return await _cases_out(
        session, cases, catalog=catalog, lang=language, timezone=settings.timezone
    )


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=10_000)


@router.post("/cases/{case_id}/notes", status_code=status.HTTP_201_CREATED)
async def add_note(
    case_id: uuid.UUID,
    body: NoteIn,
    staff: CurrentStaffOrAgency,
    session: SessionDep,
    broker: BrokerDep,
) -> EventOut:
    """An internal note: staff of the agencies on the case see it, the citizen never does."""
    case, _ = await case_for_viewer(session, staff, case_id, for_update=True)
    event = await append_event(
        session,
        case_id=case.id,
        kind="note",
        actor=staff.actor(),
        payload={"text": checked_text(body.text, what="note", limit=10_000)},
        audience="staff",
        broker=broker,
    )
    return EventOut.of(event)
