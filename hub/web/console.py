"""The staff console: log in with email, password and a TOTP code, then the queue of what
waits for an answer — chats waiting to be picked up and messages nobody answered yet, on
any channel — with how long each has waited and which are past the service norm
(``HUB_RESPONSE_NORM_HOURS``); pick a chat up or hand it over, and read a case: where it
stands, who the party is and how they like to be reached, and its whole thread; reply on
any channel (a canned reply to start from), write an internal note, move the case on, ask
the citizen for information, suspend, extend or decide.

Showing a waiting chat or message shows party data, so each one shown is written to the
access log under its case's processing activity (the chat queue does this itself).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

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
from hub.config import Settings
from hub.db import utcnow
from hub.dependencies import BrokerDep, CatalogDep, SessionDep, SettingsDep
from hub.desk.service import representatives, verified_addresses
from hub.documents.service import documents_of_case
from hub.errors import InvalidInput, NotAuthenticated
from hub.events.service import events_after
from hub.messages.schemas import MAX_MESSAGE_CHARS, checked_text
from hub.messages.segments import MAX_SEGMENTS, count_segments
from hub.messages.service import address_for, last_citizen_channel, post_message, reply
from hub.messages.thread import read_thread
from hub.models import Agency, Case, Message, Party, StaffMember, Team
from hub.ratelimit.logins import LoginsExhausted, staff_address, take_login_try
from hub.web.i18n import Language, mark
from hub.web.pages import (
    TOO_MANY_TRIES,
    PageViewer,
    StaffPage,
    local_path,
    page_language,
    page_router,
    posted_form,
    render,
)
from hub.web.replies import canned_replies, canned_reply
from journeys.catalog import Catalog
from journeys.engine import parse_action
from journeys.model import JourneyDefinition, UnknownResult, UnknownStage

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
    over_norm: bool = False


async def unanswered_messages(
    session: AsyncSession,
    *,
    viewer: Viewer,
    catalog: Catalog,
    now: dt.datetime | None = None,
    norm: dt.timedelta | None = None,
    limit: int = UNANSWERED_LIMIT,
) -> list[Unanswered]:
    """Messages from citizens on the agency's cases (owned or taken part in) that are the
    newest message on their case, longest waiting first; each shown is logged as a read.
    With a ``norm``, those that have waited longer are marked ``over_norm``.

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
        waited = now - message.created_at
        found.append(
            Unanswered(
                message,
                case,
                party.name,
                max(0, int(waited.total_seconds() // 60)),
                over_norm=norm is not None and waited > norm,
            )
        )
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
    # Too many tries: the form again (429), before the password is looked at.
    try:
        await take_login_try(request, purpose="login", address=staff_address(email))
    except LoginsExhausted as exhausted:
        page = render(
            request,
            "pages/staff_login.html",
            {"next": next_page, "email": email, "error": TOO_MANY_TRIES, "logged_out": False},
            status_code=429,
        )
        page.headers["Retry-After"] = str(exhausted.retry_after)
        return page
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
    norm = dt.timedelta(hours=settings.response_norm_hours)
    messages = await unanswered_messages(
        session, viewer=viewer, catalog=catalog, now=now, norm=norm
    )
    agency = await session.get(Agency, viewer.agency_id) if viewer.agency_id else None
    return render(
        request,
        "pages/console_queue.html",
        {
            "agency": agency.name if agency else viewer.agency_id,
            "chats": [
                {
                    "entry": entry,
                    "waiting_minutes": entry.waiting_seconds // 60,
                    "over_norm": entry.waiting_seconds > settings.chat_norm_minutes * 60,
                }
                for entry in chats
            ],
            "chat_norm_minutes": settings.chat_norm_minutes,
            "messages": messages,
            "norm_hours": settings.response_norm_hours,
            "over_norm": sum(item.over_norm for item in messages),
            "done": request.query_params.get("done"),
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


@router.post("/console/chats/{conversation_id}/handover", response_class=RedirectResponse)
async def hand_over_chat(
    conversation_id: uuid.UUID,
    request: Request,
    viewer: StaffPage,
    session: SessionDep,
    catalog: CatalogDep,
    broker: BrokerDep,
    settings: SettingsDep,
) -> Response:
    """Hand an open chat to a colleague, a team or an agency of the case (``to`` is
    ``staff:<id>``, ``team:<id>`` or ``agency:<id>``) with a note only staff read; it waits
    in their queue again."""
    fields = await posted_form(request, settings)
    kind, _, target = fields.get("to", "").partition(":")
    try:
        to_staff = uuid.UUID(target) if kind == "staff" else None
        to_team = int(target) if kind == "team" else None
    except ValueError:
        raise InvalidInput("Choose who takes the chat over.") from None
    to_agency = target if kind == "agency" and target else None
    context = chat.ChatContext(catalog=catalog, broker=broker, timezone=settings.timezone)
    await chat.hand_over(
        session,
        context,
        viewer=viewer,
        conversation_id=conversation_id,
        note=fields.get("note", "")[:MAX_MESSAGE_CHARS],
        to_staff=to_staff,
        to_team=to_team,
        to_agency=to_agency,
    )
    return RedirectResponse("/console?done=handover", status_code=303)


@dataclass(frozen=True)
class ReplyForm:
    """What the reply box holds when the page is shown: empty, a canned reply put in, or
    what was typed before an error."""

    text: str = ""
    channel: str = ""
    template: str = ""
    error: str | None = None


REPLY_CHANNELS = ("email", "sms", "letter", "portal")
NOTE_REFUSED = mark("Write the note first.")
REPLY_EMPTY = mark("Write the reply first, or choose a canned reply.")
NO_SUCH_REPLY = mark("Choose a canned reply from the list.")
REPLY_REFUSED = mark("The reply could not be sent. Check the text and the channel.")
SMS_TOO_LONG = mark("The reply is too long for a text message. Make it shorter or choose email.")


def _reply_values(case: Case, party: Party, agency_name: str, viewer: Viewer) -> dict[str, str]:
    return {
        "party_name": party.name,
        "case_reference": case.reference,
        "case_title": case.title,
        "agency_name": agency_name,
        "staff_name": viewer.name,
    }


async def _handover_targets(
    session: AsyncSession, viewer: Viewer, case: Case
) -> list[tuple[str, str, str]]:
    """Who an open chat of the viewer's agency can go to: (value, kind, name) for each
    colleague, team, and other agency of the case."""
    assert viewer.agency_id is not None
    colleagues = (
        await session.exec(
            select(StaffMember)
            .where(
                StaffMember.agency_id == viewer.agency_id,
                col(StaffMember.active).is_(True),
                col(StaffMember.id) != uuid.UUID(viewer.id),
            )
            .order_by(col(StaffMember.display_name))
        )
    ).all()
    teams = (
        await session.exec(
            select(Team).where(Team.agency_id == viewer.agency_id).order_by(col(Team.name))
        )
    ).all()
    agency_ids = [
        a
        for a in [case.agency_id, *await cases.participants(session, case.id)]
        if a != viewer.agency_id
    ]
    agencies = (
        (await session.exec(select(Agency).where(col(Agency.id).in_(agency_ids)))).all()
        if agency_ids
        else []
    )
    return [
        *((f"staff:{c.id}", "staff", c.display_name) for c in colleagues),
        *((f"team:{t.id}", "team", t.name) for t in teams),
        *((f"agency:{a.id}", "agency", a.name) for a in agencies),
    ]


HISTORY_LIMIT = 500
# Events the thread already shows as messages, or that only repeat another one.
NOT_IN_HISTORY = ("message", "note", "chat_transferred")


@dataclass(frozen=True)
class HistoryEntry:
    """One change to the case as the console's history lists it: what (the event's kind),
    who, when, and a detail in the page's language where the event has one."""

    kind: str
    actor_name: str | None
    at: dt.datetime
    detail: str | None


def _detail(
    definition: JourneyDefinition, kind: str, payload: dict[str, Any], lang: str
) -> str | None:
    """The event's detail worth a line: the stage entered, the result, what was asked, a
    reason, who a chat went to, a channel."""
    try:
        if kind in ("stage_entered", "case_started"):
            stage_id = payload.get("to") or payload.get("stage")
            return definition.stage(str(stage_id)).name.get(lang) if stage_id else None
        if kind == "decided":
            return definition.result(str(payload.get("result"))).text.get(lang)
    except (UnknownStage, UnknownResult):
        return None
    for key in ("what", "reason", "to_name", "channel", "to"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value
    return None


async def case_history(
    session: AsyncSession, catalog: Catalog, case: Case, lang: str
) -> list[HistoryEntry]:
    """The case's changes in the order they happened — started, stages, requests, holds,
    extensions, hand-overs, channel switches, the decision — without the messages, which
    the thread shows."""
    definition = definition_of(catalog, case)
    events = await events_after(
        session, case.id, 0, audiences=("citizen", "staff"), limit=HISTORY_LIMIT
    )
    return [
        HistoryEntry(
            kind=event.kind,
            actor_name=event.actor_name,
            at=event.created_at,
            detail=_detail(definition, event.kind, event.payload, lang),
        )
        for event in events
        if event.kind not in NOT_IN_HISTORY
    ]


@dataclass(frozen=True)
class RepresentativeShown:
    """Someone who may act for the party now: for all cases (``journeys`` None) or for the
    kinds of case named, until a moment or without end."""

    name: str
    journeys: list[str] | None
    valid_until: dt.datetime | None


async def representatives_shown(
    session: AsyncSession, catalog: Catalog, party_id: uuid.UUID, lang: str
) -> list[RepresentativeShown]:
    """The party's representatives in force, with the journeys of each mandate by title."""
    titles = {journey.id: journey.title.get(lang) for journey in catalog.all()}
    return [
        RepresentativeShown(
            name=representative.name,
            journeys=None
            if mandate.all_journeys
            else [titles.get(journey, journey) for journey in mandate.journeys],
            valid_until=mandate.valid_until,
        )
        for mandate, representative in await representatives(session, party_id)
    ]


async def _case_page(
    request: Request,
    *,
    viewer: Viewer,
    session: AsyncSession,
    catalog: Catalog,
    settings: Settings,
    case: Case,
    reply_form: ReplyForm | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    await record_case_access(session, viewer, case, catalog, action="read", data="case")
    lang = page_language(request)
    definition = definition_of(catalog, case)
    party = await session.get(Party, case.party_id)
    assert party is not None
    agency = await session.get(Agency, case.agency_id)
    agency_name = agency.name if agency else case.agency_id
    owner = await session.get(StaffMember, case.owner_id) if case.owner_id else None
    conversation = await chat.latest_open_conversation(session, case.id)
    stage = definition.stage(case.stage)
    addresses = await verified_addresses(session, party.id)
    usable = {
        channel: await address_for(session, party, channel) is not None
        for channel in ("email", "sms", "letter")
    }
    values = _reply_values(case, party, agency_name, viewer)
    reply_language: Language = "en" if party.preferred_language == "en" else "nl"
    can_hand_over = conversation is not None and conversation.agency_id == viewer.agency_id
    return render(
        request,
        "pages/console_case.html",
        {
            "case": case,
            "title": definition.title.get(lang),
            "view": case_status(catalog, case, lang=lang, timezone=settings.timezone),
            "started_on": cases.state_of(case).started_on,
            "party": party,
            "addresses": addresses,
            "representatives": await representatives_shown(session, catalog, party.id, lang),
            "agency": agency_name,
            "owner": owner.display_name if owner else None,
            "chat": conversation,
            "thread": await read_thread(session, case, staff_view=True),
            "history": await case_history(session, catalog, case, lang),
            "documents": await documents_of_case(session, case.id, staff_view=True),
            "picked": request.query_params.get("picked") == "1",
            "done": request.query_params.get("done"),
            "sent_on": request.query_params.get("on"),
            "next_stages": [
                (stage_id, definition.stage(stage_id).name.get(lang)) for stage_id in stage.to
            ],
            "results": [
                (result.id, result.text.get(lang))
                for result in definition.results
                if result.id in stage.decides
            ],
            "last_channel": await last_citizen_channel(session, case.id),
            "reply_channels": [(c, usable.get(c, True)) for c in REPLY_CHANNELS],
            "canned": canned_replies(reply_language, values),
            "reply": reply_form or ReplyForm(),
            "handover_targets": (
                await _handover_targets(session, viewer, case) if can_hand_over else []
            ),
        },
        status_code=status_code,
        viewer=viewer,
    )


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
    reached (addresses, needs, representatives), the chat waiting in the queue, every message
    and internal note in order, and what can be done: reply, note, hand over, act."""
    case, _ = await case_for_viewer(session, viewer, case_id)
    return await _case_page(
        request, viewer=viewer, session=session, catalog=catalog, settings=settings, case=case
    )


@router.post("/console/cases/{case_id}/reply", response_class=HTMLResponse)
async def reply_to_citizen(
    case_id: uuid.UUID,
    request: Request,
    viewer: StaffPage,
    session: SessionDep,
    catalog: CatalogDep,
    broker: BrokerDep,
    settings: SettingsDep,
) -> Response:
    """Send the reply on the chosen channel — by default the channel the citizen last wrote
    on; with no address there, the next of email → SMS → letter. With ``do=use`` nothing is
    sent: the page comes back with the chosen canned reply in the box, to adjust."""
    fields = await posted_form(request, settings)
    case, _ = await case_for_viewer(session, viewer, case_id, for_update=True)
    channel = fields.get("channel", "")
    if channel not in REPLY_CHANNELS:
        channel = ""
    text = fields.get("body", "")[: MAX_MESSAGE_CHARS + 1]

    async def again(form: ReplyForm, status_code: int) -> HTMLResponse:
        return await _case_page(
            request,
            viewer=viewer,
            session=session,
            catalog=catalog,
            settings=settings,
            case=case,
            reply_form=form,
            status_code=status_code,
        )

    if fields.get("do") == "use":
        party = await session.get(Party, case.party_id)
        agency = await session.get(Agency, case.agency_id)
        assert party is not None
        code = fields.get("template", "")
        chosen = canned_reply(
            code,
            "en" if party.preferred_language == "en" else "nl",
            _reply_values(case, party, agency.name if agency else case.agency_id, viewer),
        )
        form = (
            ReplyForm(text=chosen.text, channel=channel, template=code)
            if chosen
            else ReplyForm(text=text, channel=channel, error=NO_SUCH_REPLY)
        )
        return await again(form, 200 if chosen else 422)
    try:
        if not text.strip():
            raise InvalidInput(REPLY_EMPTY)
        message = await reply(
            session,
            case=case,
            author=viewer.actor(),
            body=checked_text(text, what="message", limit=MAX_MESSAGE_CHARS),
            channel=channel or None,
            identified_by=viewer.identified_by,
            broker=broker,
        )
    except InvalidInput as refused:
        error = str(refused) if str(refused) == REPLY_EMPTY else REPLY_REFUSED
        if len(text) <= MAX_MESSAGE_CHARS and count_segments(text).segments > MAX_SEGMENTS:
            error = SMS_TOO_LONG  # only a text message refuses a reply this long
        return await again(ReplyForm(text=text, channel=channel, error=error), 422)
    await record_case_access(session, viewer, case, catalog, action="change", data="messages")
    return RedirectResponse(
        f"/console/cases/{case.id}?done=reply&on={message.channel}#thread-heading",
        status_code=303,
    )


@router.post("/console/cases/{case_id}/notes", response_class=RedirectResponse)
async def write_note(
    case_id: uuid.UUID,
    request: Request,
    viewer: StaffPage,
    session: SessionDep,
    catalog: CatalogDep,
    broker: BrokerDep,
    settings: SettingsDep,
) -> Response:
    """An internal note on the case's thread: staff of the case's agencies read it, the
    citizen never does."""
    fields = await posted_form(request, settings)
    case, _ = await case_for_viewer(session, viewer, case_id, for_update=True)
    text = fields.get("text", "")
    if not text.strip():
        raise InvalidInput(NOTE_REFUSED)
    await post_message(
        session,
        case=case,
        channel="portal",
        direction="internal",
        author=viewer.actor(),
        body=checked_text(text, what="note", limit=MAX_MESSAGE_CHARS),
        identified_by=viewer.identified_by,
        broker=broker,
    )
    await record_case_access(session, viewer, case, catalog, action="change", data="messages")
    return RedirectResponse(f"/console/cases/{case.id}?done=note#thread-heading", status_code=303)


ACTION_FIELDS = {
    "advance": ("to",),
    "request_information": ("what", "deadline"),
    "suspend": ("reason",),
    "resume": (),
    "extend": ("reason", "days", "unit"),
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
    information by a date, suspend or resume it, extend the time for a decision, or decide.
    What the stage does not allow is refused (409)."""
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
