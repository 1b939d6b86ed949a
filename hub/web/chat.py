"""Live chat pages: the citizen's chat on a case or with an agency, and the staff side.

Every form here works without script: a chat line is posted, stored through the chat service
and the page shown again. ``/static/live.js`` adds the live part on top — new lines, typing,
presence and the tracker without a reload — over the websocket of
docs/websocket-protocol.md, with a ticket this module issues for the page's cookie session.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.access.service import Viewer, case_for_viewer
from hub.cases.service import definition_of, record_case_access
from hub.chat import service as chat
from hub.chat.hours import Opening, opening
from hub.config import Settings
from hub.db import utcnow
from hub.dependencies import BrokerDep, CatalogDep, SessionDep, SettingsDep
from hub.errors import Conflict, NotAuthenticated
from hub.live.protocol import SUBPROTOCOL
from hub.live.tickets import issue_ticket
from hub.messages.schemas import MessageOut
from hub.messages.thread import read_thread
from hub.models import Agency, Case, Conversation, Party, ProcessingActivity, StaffMember
from hub.web.i18n import mark
from hub.web.pages import (
    CitizenPage,
    PageViewer,
    StaffPage,
    page_language,
    page_router,
    posted_form,
    render,
)
from journeys.catalog import Catalog

router = page_router()

LINE_EMPTY = mark("Write a message before you send it.")
QUESTION_INCOMPLETE = mark("Choose an organisation and write your question.")
MAX_LINE = 10_000


@dataclass(frozen=True)
class CaseChat:
    """What the case page's chat box shows: the open chat (if any), who has it, whether the
    agency's chat is open now, and where the live view resumes."""

    conversation: Conversation | None
    agency: str
    staff_name: str | None
    opening: Opening
    reply_options: list[str]
    can_start: bool
    after: int
    tracker_seq: int
    error: str | None


def live_position(case: Case, thread: list[MessageOut]) -> int:
    """The position a live view of the page resumes from: the case's log as read, or a later
    message the thread (read after the case) already shows, so that none appears twice."""
    return max([case.last_seq, *(message.seq or 0 for message in thread)])


async def _staff_name(session: AsyncSession, conversation: Conversation | None) -> str | None:
    if conversation is None or conversation.staff_id is None:
        return None
    staff = await session.get(StaffMember, conversation.staff_id)
    return staff.display_name if staff else None


async def case_chat(
    session: AsyncSession,
    case: Case,
    *,
    thread: list[MessageOut],
    settings: Settings,
    error: str | None = None,
) -> CaseChat:
    """The chat box of the citizen's case page (see :class:`CaseChat`)."""
    conversation = await chat.latest_open_conversation(session, case.id)
    agency = await session.get(Agency, conversation.agency_id if conversation else case.agency_id)
    party = await session.get(Party, case.party_id)
    options = await chat.reply_options(session, party) if party and conversation else []
    return CaseChat(
        conversation=conversation,
        agency=agency.name if agency else case.agency_id,
        staff_name=await _staff_name(session, conversation),
        opening=opening(agency.opening_hours if agency else {}, utcnow(), settings.timezone),
        reply_options=options,
        can_start=case.status != "closed" or conversation is not None,
        after=live_position(case, thread),
        tracker_seq=case.last_seq,
        error=LINE_EMPTY if error == "empty" else None,
    )


def _context(catalog: Catalog, broker: BrokerDep, settings: Settings) -> chat.ChatContext:
    return chat.ChatContext(catalog=catalog, broker=broker, timezone=settings.timezone)


def _line(fields: dict[str, str]) -> str:
    return fields.get("text", "").strip()[:MAX_LINE]


# --- the live socket's ticket --------------------------------------------------------------


@router.post("/live/ticket")
async def live_ticket(request: Request, viewer: PageViewer, settings: SettingsDep) -> Response:
    """A single-use ticket for the live socket, for the page's cookie session (the API's
    ``POST /api/live/tickets`` is for clients with a bearer token); CSRF-checked like every
    form, so another site cannot make the browser open a socket in its name."""
    await posted_form(request, settings)
    if viewer is None or viewer.kind not in ("citizen", "staff") or viewer.session_id is None:
        raise NotAuthenticated("Log in first.")
    seconds = settings.ws_token_seconds
    ticket = issue_ticket(settings.secret_key.get_secret_value(), viewer.session_id, seconds)
    return JSONResponse(
        {"ticket": ticket, "expires_in": seconds, "subprotocol": SUBPROTOCOL},
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


# --- the citizen's side ----------------------------------------------------------------------


@router.post("/cases/{case_id}/messages", response_class=RedirectResponse)
async def send_line(
    case_id: uuid.UUID,
    request: Request,
    viewer: CitizenPage,
    session: SessionDep,
    catalog: CatalogDep,
    broker: BrokerDep,
    settings: SettingsDep,
) -> Response:
    """A chat line on the case; the first one starts the chat (it waits in the agency's
    queue, or — outside opening hours — the page says when to expect an answer)."""
    fields = await posted_form(request, settings)
    text = _line(fields)
    if not text:
        await case_for_viewer(session, viewer, case_id)
        return RedirectResponse(f"/cases/{case_id}?chat_error=empty#chat-text", status_code=303)
    await chat.say(
        session,
        _context(catalog, broker, settings),
        viewer=viewer,
        case_id=case_id,
        body=text,
        ref=fields.get("ref") or None,
    )
    return RedirectResponse(f"/cases/{case_id}#chat", status_code=303)


async def _open_chat_of_case(
    session: AsyncSession, viewer: Viewer, case_id: uuid.UUID
) -> Conversation:
    case, _ = await case_for_viewer(session, viewer, case_id)
    conversation = await chat.latest_open_conversation(session, case.id)
    if conversation is None:
        raise Conflict("This case has no open chat.")
    return conversation


@router.post("/cases/{case_id}/chat/reply-channel", response_class=RedirectResponse)
async def choose_reply_channel(
    case_id: uuid.UUID,
    request: Request,
    viewer: CitizenPage,
    session: SessionDep,
    catalog: CatalogDep,
    broker: BrokerDep,
    settings: SettingsDep,
) -> Response:
    """How the answer reaches the citizen once they have left the chat: chat, email or SMS."""
    fields = await posted_form(request, settings)
    conversation = await _open_chat_of_case(session, viewer, case_id)
    await chat.set_reply_channel(
        session,
        _context(catalog, broker, settings),
        viewer=viewer,
        conversation_id=conversation.id,
        channel=fields.get("channel", ""),
    )
    return RedirectResponse(f"/cases/{case_id}#chat", status_code=303)


@router.post("/cases/{case_id}/chat/close", response_class=RedirectResponse)
async def end_chat(
    case_id: uuid.UUID,
    request: Request,
    viewer: CitizenPage,
    session: SessionDep,
    catalog: CatalogDep,
    broker: BrokerDep,
    settings: SettingsDep,
) -> Response:
    """The citizen ends the chat; the case goes on."""
    await posted_form(request, settings)
    conversation = await _open_chat_of_case(session, viewer, case_id)
    await chat.close_chat(
        session, _context(catalog, broker, settings), viewer=viewer, conversation_id=conversation.id
    )
    return RedirectResponse(f"/cases/{case_id}#chat", status_code=303)


async def _question_agencies(session: AsyncSession, catalog: Catalog) -> list[Agency]:
    """The agencies that answer questions: those registered for the question journey's
    processing activity."""
    activity = catalog.get(chat.QUESTION_JOURNEY).processing_activity
    query = (
        select(Agency)
        .join(ProcessingActivity, col(ProcessingActivity.agency_id) == col(Agency.id))
        .where(ProcessingActivity.code == activity)
        .order_by(col(Agency.name))
    )
    return list((await session.exec(query)).unique().all())


def _question_page(
    request: Request,
    viewer: Viewer,
    agencies: list[Agency],
    *,
    chosen: str = "",
    text: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "pages/chat_question.html",
        {"agencies": agencies, "chosen": chosen, "text": text, "error": error},
        viewer=viewer,
        status_code=status_code,
    )


@router.get("/questions/new", response_class=HTMLResponse)
async def question_page(
    request: Request, viewer: CitizenPage, session: SessionDep, catalog: CatalogDep
) -> Response:
    """Ask an organisation a question in the chat, without a case: the question becomes one."""
    return _question_page(request, viewer, await _question_agencies(session, catalog))


@router.post("/questions", response_class=HTMLResponse)
async def ask_question(
    request: Request,
    viewer: CitizenPage,
    session: SessionDep,
    catalog: CatalogDep,
    broker: BrokerDep,
    settings: SettingsDep,
) -> Response:
    """Start a chat with the chosen agency; the citizen goes on in the new case's chat."""
    fields = await posted_form(request, settings)
    agencies = await _question_agencies(session, catalog)
    chosen = fields.get("agency", "")
    text = _line(fields)
    if not text or chosen not in {agency.id for agency in agencies}:
        return _question_page(
            request,
            viewer,
            agencies,
            chosen=chosen,
            text=text,
            error=QUESTION_INCOMPLETE,
            status_code=422,
        )
    started = await chat.start_chat(
        session,
        _context(catalog, broker, settings),
        viewer=viewer,
        agency_id=chosen,
        text=text,
    )
    return RedirectResponse(f"/cases/{started.case.id}#chat", status_code=303)


# --- the staff side --------------------------------------------------------------------------


@router.get("/console/chats/{conversation_id}", response_class=HTMLResponse)
async def staff_chat_page(
    conversation_id: uuid.UUID,
    request: Request,
    viewer: StaffPage,
    session: SessionDep,
    catalog: CatalogDep,
) -> Response:
    """A chat as staff see it: the case's whole thread (notes too), live, the reply box, and
    whether the citizen is in the chat. Reading it is written to the access log."""
    conversation, case, _ = await chat.conversation_for_viewer(session, viewer, conversation_id)
    await record_case_access(session, viewer, case, catalog, action="read", data="chat")
    party = await session.get(Party, case.party_id)
    thread = await read_thread(session, case, staff_view=True)
    context: dict[str, Any] = {
        "conversation": conversation,
        "case": case,
        "title": definition_of(catalog, case).title.get(page_language(request)),
        "party": party.name if party else "",
        "staff_name": await _staff_name(session, conversation),
        "mine": conversation.staff_id is not None and str(conversation.staff_id) == viewer.id,
        "thread": thread,
        "after": live_position(case, thread),
        "error": LINE_EMPTY if request.query_params.get("chat_error") == "empty" else None,
    }
    return render(request, "pages/console_chat.html", context, viewer=viewer)


async def _staff_chat(
    session: AsyncSession, viewer: Viewer, conversation_id: uuid.UUID
) -> tuple[Conversation, Case]:
    conversation, case, _ = await chat.conversation_for_viewer(session, viewer, conversation_id)
    if conversation.status == "closed":
        raise Conflict("This chat is closed.")
    return conversation, case


@router.post("/console/chats/{conversation_id}/messages", response_class=RedirectResponse)
async def reply_in_chat(
    conversation_id: uuid.UUID,
    request: Request,
    viewer: StaffPage,
    session: SessionDep,
    catalog: CatalogDep,
    broker: BrokerDep,
    settings: SettingsDep,
) -> Response:
    """A reply to the citizen: by chat while they are in it, else the way the chat asked."""
    fields = await posted_form(request, settings)
    _, case = await _staff_chat(session, viewer, conversation_id)
    text = _line(fields)
    page = f"/console/chats/{conversation_id}"
    if not text:
        return RedirectResponse(f"{page}?chat_error=empty#chat-text", status_code=303)
    await chat.say(
        session,
        _context(catalog, broker, settings),
        viewer=viewer,
        case_id=case.id,
        body=text,
        ref=fields.get("ref") or None,
    )
    return RedirectResponse(f"{page}#chat", status_code=303)


@router.post("/console/chats/{conversation_id}/close", response_class=RedirectResponse)
async def close_chat(
    conversation_id: uuid.UUID,
    request: Request,
    viewer: StaffPage,
    session: SessionDep,
    catalog: CatalogDep,
    broker: BrokerDep,
    settings: SettingsDep,
) -> Response:
    """End the chat; the citizen is told, and the case goes on."""
    await posted_form(request, settings)
    await _staff_chat(session, viewer, conversation_id)
    await chat.close_chat(
        session, _context(catalog, broker, settings), viewer=viewer, conversation_id=conversation_id
    )
    return RedirectResponse(f"/console/chats/{conversation_id}", status_code=303)
