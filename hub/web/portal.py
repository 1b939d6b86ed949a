"""The citizen portal: log in with a one-time code, "My cases" across every agency, a
case's page with its tracker, its contact person and its thread, where a citizen whose turn
it is sends what was asked for, and "What we know about you" with the access log.

A citizen reading their own case is not an access by someone else and is not logged; a
representative's read is (``record_case_access`` decides). Routes stay thin: the case,
login and document services do the work.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import BackgroundTasks, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.access.routes import my_access_log
from hub.access.service import Viewer, case_for_viewer
from hub.auth.citizens import normalise_address, send_login_code, verify_login_code
from hub.auth.dependencies import SESSION_COOKIE
from hub.auth.routes import set_session_cookie
from hub.auth.sessions import resolve_session, revoke_session
from hub.cases import service as cases
from hub.clock import local_today
from hub.config import Settings
from hub.db import utcnow
from hub.dependencies import BrokerDep, CatalogDep, SessionDep, SettingsDep
from hub.documents.routes import read_upload
from hub.documents.service import (
    DocumentRefused,
    DocumentTooLarge,
    announce_document,
    documents_of_case,
    store_document,
)
from hub.errors import InvalidInput, NotAuthenticated
from hub.messages.service import mark_case_read
from hub.messages.thread import read_thread
from hub.models import Agency, Case, DigitalAddress, Party, StaffMember
from hub.ratelimit.logins import LoginsExhausted, citizen_address, take_login_try
from hub.web.chat import case_chat
from hub.web.i18n import LANGUAGE_COOKIE, LANGUAGES, mark
from hub.web.pages import (
    CITIZEN_LOGIN,
    STAFF_LOGIN,
    TOO_MANY_TRIES,
    CitizenPage,
    PageViewer,
    local_path,
    page_language,
    page_router,
    posted_form,
    render,
    set_language_cookie,
)
from hub.web.security import CSRF_FIELD, check_csrf
from journeys.catalog import Catalog
from journeys.engine import ProvideInformation

router = page_router()

MY_CASES = "/my-cases"
# What the pages say when a form was not right; the template translates them.
ADDRESS_INVALID = mark("Fill in your email address, or a mobile number such as +31612345678.")
CODE_REFUSED = mark("The code is wrong or no longer valid. Ask for a new code.")
TOO_MANY_CODES = mark("You asked for too many codes. Wait a quarter of an hour and try again.")
FILE_MISSING = mark("Choose a file to send.")
FILE_REFUSED = mark("We cannot take this file. Send a PDF, or a photo or scan (PNG, JPEG or TIFF).")
FILE_TOO_LARGE = mark("The file is too large. Send a smaller scan, or the pages one by one.")


def _login_page(
    request: Request,
    *,
    next_page: str,
    error: str | None = None,
    address: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "pages/login.html",
        {
            "next": next_page,
            "error": error,
            "address": address,
            "logged_out": request.query_params.get("logged_out") == "1",
            # Logging in through the identity provider, when one is configured.
            "oidc": bool(request.app.state.settings.oidc_issuer),
        },
        status_code=status_code,
    )


def _code_page(
    request: Request,
    *,
    next_page: str,
    address: str,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "pages/login_code.html",
        {
            "next": next_page,
            "address": address,
            "error": error,
            "minutes": request.app.state.settings.login_code_minutes,
        },
        status_code=status_code,
    )


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, viewer: PageViewer, next: str | None = None) -> Response:
    """Ask for a one-time login code."""
    if viewer is not None and viewer.kind == "citizen":
        return RedirectResponse(local_path(next, MY_CASES), status_code=303)
    return _login_page(request, next_page=local_path(next, MY_CASES))


@router.post("/login", response_class=HTMLResponse)
async def ask_code(
    request: Request, background: BackgroundTasks, settings: SettingsDep
) -> Response:
    """Send a code to the address if a citizen verified it; the page that follows is the
    same, and as quick, whether or not the address is known (the code is sent after it)."""
    fields = await posted_form(request, settings)
    next_page = local_path(fields.get("next"), MY_CASES)
    address = fields.get("address", "").strip()[:200]
    try:
        await take_login_try(request, purpose="code", address=citizen_address(address))
        normalise_address(address)
    except LoginsExhausted as exhausted:
        page = _login_page(
            request, next_page=next_page, error=TOO_MANY_CODES, address=address, status_code=429
        )
        page.headers["Retry-After"] = str(exhausted.retry_after)
        return page
    except InvalidInput:
        return _login_page(
            request, next_page=next_page, error=ADDRESS_INVALID, address=address, status_code=422
        )
    background.add_task(
        send_login_code, request.app.state.database, email_or_phone=address, settings=settings
    )
    # The address travels in the form, not the URL: a URL ends up in logs.
    return _code_page(request, next_page=next_page, address=address)


@router.post("/login/code", response_class=HTMLResponse)
async def log_in(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """Log in with the code; a wrong code is counted (the route returns, so it commits)."""
    fields = await posted_form(request, settings)
    next_page = local_path(fields.get("next"), MY_CASES)
    address = fields.get("address", "").strip()[:200]
    code = "".join(fields.get("code", "").split())[:20]
    # Too many tries: the form again (429), before the code is looked at.
    try:
        await take_login_try(request, purpose="login", address=citizen_address(address))
    except LoginsExhausted as exhausted:
        page = _code_page(
            request, next_page=next_page, address=address, error=TOO_MANY_TRIES, status_code=429
        )
        page.headers["Retry-After"] = str(exhausted.retry_after)
        return page
    try:
        login, token = await verify_login_code(
            session, email_or_phone=address, code=code, settings=settings
        )
    except (NotAuthenticated, InvalidInput):
        return _code_page(
            request, next_page=next_page, address=address, error=CODE_REFUSED, status_code=401
        )
    response = RedirectResponse(next_page, status_code=303)
    set_session_cookie(response, token, settings)
    if LANGUAGE_COOKIE not in request.cookies:
        # Until the browser chose a language, pages speak the one the citizen told us.
        party = await session.get(Party, login.subject_id)
        if party is not None and party.preferred_language in LANGUAGES:
            set_language_cookie(response, party.preferred_language, settings)
    return response


@router.post("/logout", response_class=RedirectResponse, status_code=303)
async def log_out(
    request: Request, session: SessionDep, settings: SettingsDep, viewer: PageViewer
) -> Response:
    """End the session and forget the cookie; staff go back to their own login page."""
    await posted_form(request, settings)
    login = await resolve_session(session, request.cookies.get(SESSION_COOKIE, ""))
    if login is not None:
        await revoke_session(session, login)
    target = STAFF_LOGIN if viewer is not None and viewer.kind == "staff" else CITIZEN_LOGIN
    response = RedirectResponse(f"{target}?logged_out=1", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=settings.cookie_secure
    )
    return response


async def _agency_names(session: AsyncSession, agency_ids: set[str]) -> dict[str, str]:
    names = {}
    for agency_id in agency_ids:
        agency = await session.get(Agency, agency_id)
        names[agency_id] = agency.name if agency else agency_id
    return names


@router.get("/my-cases", response_class=HTMLResponse)
async def my_cases(
    request: Request,
    viewer: CitizenPage,
    session: SessionDep,
    catalog: CatalogDep,
    settings: SettingsDep,
) -> Response:
    """Every case of the citizen, whichever agency has it: first those waiting for the
    citizen, then those running, then those finished, newest first in each."""
    assert viewer.party_id is not None
    lang = page_language(request)
    rows: list[dict[str, Any]] = []
    own = await cases.cases_of_party(session, viewer.party_id)
    agencies = await _agency_names(session, {case.agency_id for case in own})
    for case in own:
        rows.append(
            {
                "case": case,
                "title": cases.definition_of(catalog, case).title.get(lang),
                "agency": agencies[case.agency_id],
                "view": cases.case_status(catalog, case, lang=lang, timezone=settings.timezone),
            }
        )
    groups = {
        "todo": [row for row in rows if row["view"].turn == "citizen"],
        "running": [
            row for row in rows if row["view"].turn != "citizen" and row["view"].status != "closed"
        ],
        "finished": [row for row in rows if row["view"].status == "closed"],
    }
    return render(request, "pages/my_cases.html", {"rows": rows, "groups": groups}, viewer=viewer)


async def _case_page(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    case: Case,
    *,
    catalog: Catalog,
    settings: Settings,
    upload_error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    lang = page_language(request)
    definition = cases.definition_of(catalog, case)
    agency = await session.get(Agency, case.agency_id)
    owner = await session.get(StaffMember, case.owner_id) if case.owner_id else None
    thread = await read_thread(session, case, staff_view=False)
    context: dict[str, Any] = {
        "case": case,
        "title": definition.title.get(lang),
        "started_on": cases.state_of(case).started_on,
        "view": cases.case_status(catalog, case, lang=lang, timezone=settings.timezone),
        "agency": agency.name if agency else case.agency_id,
        "contact": owner.display_name if owner else None,
        "thread": thread,
        "documents": await documents_of_case(session, case.id, staff_view=False),
        "chat": await case_chat(
            session,
            case,
            thread=thread,
            settings=settings,
            error=request.query_params.get("chat_error"),
        ),
        "upload_error": upload_error,
        "sent": request.query_params.get("sent") == "1",
        "max_mb": max(1, settings.max_upload_bytes // 1_000_000),
    }
    await cases.record_case_access(session, viewer, case, catalog, action="read", data="case")
    if viewer.party_id == case.party_id:
        # The citizen has now seen staff's messages (a representative's look does not count).
        await mark_case_read(session, case.id, now=utcnow())
    return render(request, "pages/case.html", context, viewer=viewer, status_code=status_code)


@router.get("/cases/{case_id}", response_class=HTMLResponse)
async def case_page(
    case_id: uuid.UUID,
    request: Request,
    viewer: CitizenPage,
    session: SessionDep,
    catalog: CatalogDep,
    settings: SettingsDep,
) -> Response:
    """One case: the tracker from start to result, what happens now and next, whose turn it
    is, the contact person and agency, and every message on every channel."""
    case, _ = await case_for_viewer(session, viewer, case_id)
    return await _case_page(request, session, viewer, case, catalog=catalog, settings=settings)


@router.post("/cases/{case_id}/documents", response_class=HTMLResponse)
async def send_document(
    case_id: uuid.UUID,
    request: Request,
    viewer: CitizenPage,
    session: SessionDep,
    catalog: CatalogDep,
    broker: BrokerDep,
    settings: SettingsDep,
) -> Response:
    """Send a document for the case; while the case waits for information from the citizen,
    the document answers that request and the case goes on."""
    # Authorised before a byte of the file is read, as the API does.
    case, representing = await case_for_viewer(session, viewer, case_id)
    try:
        filename, content, fields = await read_upload(request, max_bytes=settings.max_upload_bytes)
    except DocumentTooLarge:
        return await _case_page(
            request,
            session,
            viewer,
            case,
            catalog=catalog,
            settings=settings,
            upload_error=FILE_TOO_LARGE,
            status_code=413,
        )
    except InvalidInput:
        check_csrf(request, settings, None)
        raise
    check_csrf(request, settings, fields.get(CSRF_FIELD))
    if not content:
        return await _case_page(
            request,
            session,
            viewer,
            case,
            catalog=catalog,
            settings=settings,
            upload_error=FILE_MISSING,
            status_code=422,
        )
    actor = viewer.actor(representing=representing)
    try:
        document = await store_document(
            session,
            store=settings.document_store,
            content=content,
            filename=filename,
            source="upload",
            uploaded_by_kind=actor.kind,
            uploaded_by_id=viewer.id,
            max_bytes=settings.max_upload_bytes,
            case_id=case.id,
            party_id=case.party_id,
        )
    except DocumentRefused:
        return await _case_page(
            request,
            session,
            viewer,
            case,
            catalog=catalog,
            settings=settings,
            upload_error=FILE_REFUSED,
            status_code=422,
        )
    await announce_document(session, case_id=case.id, document=document, actor=actor, broker=broker)
    # The event above locked the case row: its state is read afresh, then acted on.
    await session.refresh(case)
    if case.status == "waiting_for_citizen":
        await cases.act_on_case(
            session,
            catalog=catalog,
            case=case,
            action=ProvideInformation(
                on=local_today(settings.timezone), note=f"Document: {document.filename}"
            ),
            actor=actor,
            broker=broker,
            timezone=settings.timezone,
        )
    await cases.record_case_access(session, viewer, case, catalog, action="change", data="document")
    return RedirectResponse(f"/cases/{case.id}?sent=1#what-to-do", status_code=303)


@router.get("/my-data", response_class=HTMLResponse)
async def my_data(request: Request, viewer: CitizenPage, session: SessionDep) -> Response:
    """What the government holds about the citizen: their details, their addresses and whether
    each is verified, and the access log — who read or changed their data, when and why."""
    assert viewer.party_id is not None
    party = await session.get(Party, viewer.party_id)
    addresses = (
        await session.exec(
            select(DigitalAddress)
            .where(DigitalAddress.party_id == viewer.party_id)
            .order_by(col(DigitalAddress.kind), col(DigitalAddress.created_at))
        )
    ).all()
    # The access log as the API gives it (``GET /api/me/access-log``): the newest hundred.
    log = await my_access_log(citizen=viewer, session=session, limit=100, before=None)
    return render(
        request,
        "pages/my_data.html",
        {"party": party, "addresses": addresses, "log": log},
        viewer=viewer,
    )
