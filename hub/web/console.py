"""The staff console: log in with email, password and a TOTP code, then the queue of what
waits for an answer — chats waiting to be picked up and messages nobody answered yet, on
any channel — with how long each has waited; pick a chat up, and read a case: where it
stands, who the party is and how they like to be reached, and its whole thread; move it on,
ask the citizen for information, or decide.

Showing a waiting chat or message shows party data, so each one shown is written to the
access log under its case's processing activity (the chat queue does this itself).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import and_, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.access.service import Viewer, case_for_viewer, visible_agency_filter
from hub.auth.routes import set_session_cookie
from hub.auth.staff import login_staff
from hub.cases import service as cases
from hub.cases.service import case_status, definition_of, record_case_access
from hub.chat import service as chat
from hub.clock import local_today
from hub.db import utcnow
from hub.dependencies import BrokerDep, CatalogDep, SessionDep, SettingsDep
from hub.documents.service import documents_of_case
from hub.errors import InvalidInput, NotAuthenticated
from hub.messages.thread import read_thread
from hub.models import Agency, Case, Message, Party, StaffMember
from hub.web.i18n import mark
from hub.web.pages import (
    PageViewer,
    StaffPage,
    local_path,
    page_language,
    page_router,
    posted_form,
    render,
)
from journeys.catalog import Catalog
from journeys.engine import parse_action

router = page_router()

CONSOLE = "/console"
LOGIN_REFUSED = mark("Email address, password or code is wrong.")
UNANSWERED_LIMIT = 200


@dataclass(frozen=True)
class Unanswered:
    """A citizen's message that is the last word on its case: nobody answered it yet."""

    message: Message
    case: Case
    party_name: str
    waiting_minutes: int


async def unanswered_messages(
    session: AsyncSession,
    *,
    viewer: Viewer,
    catalog: Catalog,
    now: dt.datetime | None = None,
    limit: int = UNANSWERED_LIMIT,
) -> list[Unanswered]:
    """Messages from citizens on the agency's cases (owned or taken part in) that are the
    newest message on their case, longest waiting first; each shown is logged as a read.

    Chat lines are left out: a chat waits in the chat queue, or is with someone already.
    Internal notes do not count as an answer.
    """
    assert viewer.agency_id is not None
    newest = (
        select(col(Message.case_id).label("case_id"), func.max(Message.created_at).label("at"))
        .where(col(Message.case_id).is_not(None), Message.direction != "internal")
        .group_by(col(Message.case_id))
        .subquery()
    )
    rows = (
        await session.exec(
            select(Message, Case, Party)
            .join(
                newest,
                and_(
                    col(Message.case_id) == newest.c.case_id,
                    col(Message.created_at) == newest.c.at,
                ),
            )
            .join(Case, col(Case.id) == col(Message.case_id))
            .join(Party, col(Party.id) == col(Case.party_id))
            .where(
                Message.direction == "inbound",
                col(Message.conversation_id).is_(None),
                visible_agency_filter(viewer.agency_id),  # type: ignore[arg-type]
            )
            .order_by(col(Message.created_at))
            .limit(limit)
        )
    ).all()
    now = now or utcnow()
    found = []
    for message, case, party in rows:
        await record_case_access(session, viewer, case, catalog, action="read", data="queue")
        waited = max(0, int((now - message.created_at).total_seconds() // 60))
        found.append(Unanswered(message, case, party.name, waited))
    return found


@router.get("/console/login", response_class=HTMLResponse)
async def staff_login_page(
    request: Request, viewer: PageViewer, next: str | None = None
) -> Response:
    """The staff login: email address, password and the code from the authenticator app."""
    if viewer is not None and viewer.kind == "staff":
        return RedirectResponse(local_path(next, CONSOLE), status_code=303)
    return render(
        request,
        "pages/staff_login.html",
        {
            "next": local_path(next, CONSOLE),
            "email": "",
            "error": None,
            "logged_out": request.query_params.get("logged_out") == "1",
        },
    )


@router.post("/console/login", response_class=HTMLResponse)
async def staff_log_in(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """Log in; every refusal says the same, whichever of the three was wrong."""
    fields = await posted_form(request, settings)
    next_page = local_path(fields.get("next"), CONSOLE)
    email = fields.get("email", "").strip()[:320]
    try:
        _, token = await login_staff(
            session,
            email=email,
            password=fields.get("password", "")[:1000],
            totp_code="".join(fields.get("code", "").split())[:20],
            hours=settings.session_hours,
        )
    except NotAuthenticated:
        return render(
            request,
            "pages/staff_login.html",
            {"next": next_page, "email": email, "error": LOGIN_REFUSED, "logged_out": False},
            status_code=401,
        )
    response = RedirectResponse(next_page, status_code=303)
    set_session_cookie(response, token, settings)
    return response


@router.get("/console", response_class=HTMLResponse)
async def queue_page(
    request: Request,
    viewer: StaffPage,
    session: SessionDep,
    catalog: CatalogDep,
    broker: BrokerDep,
    settings: SettingsDep,
) -> Response:
    """What waits for an answer at the staff member's agency: chats to pick up and messages
    on any channel nobody answered yet, longest waiting first."""
    context = chat.ChatContext(catalog=catalog, broker=broker, timezone=settings.timezone)
    now = utcnow()
    chats = await chat.queue(session, context, viewer=viewer, now=now)
    messages = await unanswered_messages(session, viewer=viewer, catalog=catalog, now=now)
    agency = await session.get(Agency, viewer.agency_id) if viewer.agency_id else None
    return render(
        request,
        "pages/console_queue.html",
        {
            "agency": agency.name if agency else viewer.agency_id,
            "chats": [
                {"entry": entry, "waiting_minutes": entry.waiting_seconds // 60} for entry in chats
            ],
            "messages": messages,
        },
        viewer=viewer,
    )


@router.post("/console/chats/{conversation_id}/pickup", response_class=RedirectResponse)
async def pick_up_chat(
    conversation_id: uuid.UUID,
    request: Request,
    viewer: StaffPage,
    session: SessionDep,
    catalog: CatalogDep,
    broker: BrokerDep,
    settings: SettingsDep,
) -> Response:
    """Take a waiting chat: the citizen is told who has it; a colleague who was first → 409."""
    await posted_form(request, settings)
    context = chat.ChatContext(catalog=catalog, broker=broker, timezone=settings.timezone)
    _, case = await chat.pick_up(session, context, viewer=viewer, conversation_id=conversation_id)
    return RedirectResponse(f"/console/cases/{case.id}?picked=1", status_code=303)


@router.get("/console/cases/{case_id}", response_class=HTMLResponse)
async def case_view(
    case_id: uuid.UUID,
    request: Request,
    viewer: StaffPage,
    session: SessionDep,
    catalog: CatalogDep,
    settings: SettingsDep,
) -> Response:
    """A case as staff see it: the tracker the citizen sees, the party and how they like to be
    reached, the chat waiting in the queue, and every message and internal note in order."""
    case, _ = await case_for_viewer(session, viewer, case_id)
    await record_case_access(session, viewer, case, catalog, action="read", data="case")
    lang = page_language(request)
    definition = definition_of(catalog, case)
    party = await session.get(Party, case.party_id)
    agency = await session.get(Agency, case.agency_id)
    owner = await session.get(StaffMember, case.owner_id) if case.owner_id else None
    conversation = await chat.latest_open_conversation(session, case.id)
    return render(
        request,
        "pages/console_case.html",
        {
            "case": case,
            "title": definition.title.get(lang),
            "view": case_status(catalog, case, lang=lang, timezone=settings.timezone),
            "party": party,
            "agency": agency.name if agency else case.agency_id,
            "owner": owner.display_name if owner else None,
            "chat": conversation,
            "thread": await read_thread(session, case, staff_view=True),
            "documents": await documents_of_case(session, case.id, staff_view=True),
            "picked": request.query_params.get("picked") == "1",
            "done": request.query_params.get("done"),
            "next_stages": [
                (stage_id, definition.stage(stage_id).name.get(lang))
                for stage_id in definition.stage(case.stage).to
            ],
            "results": [
                (result.id, result.text.get(lang))
                for result in definition.results
                if result.id in definition.stage(case.stage).decides
            ],
        },
        viewer=viewer,
    )


ACTION_FIELDS = {
    "advance": ("to",),
    "request_information": ("what", "deadline"),
    "decide": ("result",),
}


@router.post("/console/cases/{case_id}/actions", response_class=RedirectResponse)
async def act_on_case(
    case_id: uuid.UUID,
    request: Request,
    viewer: StaffPage,
    session: SessionDep,
    catalog: CatalogDep,
    broker: BrokerDep,
    settings: SettingsDep,
) -> Response:
    """Take a journey action on the case: move it to a next stage, ask the citizen for
    information by a date, or decide. What the stage does not allow is refused (409)."""
    fields = await posted_form(request, settings)
    case, _ = await case_for_viewer(session, viewer, case_id, for_update=True)
    kind = fields.get("kind", "")
    if kind not in ACTION_FIELDS:
        raise InvalidInput("No such action.")
    raw: dict[str, object] = {"kind": kind, "on": local_today(settings.timezone)}
    for name in ACTION_FIELDS[kind]:
        value = fields.get(name, "").strip()
        if value:
            raw[name] = value
    try:
        action = parse_action(raw)
    except ValidationError:
        raise InvalidInput("The action is not complete.") from None
    await cases.act_on_case(
        session,
        catalog=catalog,
        case=case,
        action=action,
        actor=viewer.actor(),
        broker=broker,
        timezone=settings.timezone,
    )
    await record_case_access(session, viewer, case, catalog, action="change", data="case")
    return RedirectResponse(f"/console/cases/{case.id}?done={kind}", status_code=303)
