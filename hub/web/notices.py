"""The citizen's notices and permissions: the inbox of notices agencies sent and of staff's
messages on their cases, with whether each was read, and the permission per topic to be
told about rights they may have ("you may use my data to tell me about…"), given or
withdrawn here and kept with its history.

Both show the citizen's own data to the citizen, which is not an access by someone else and
is not logged.
"""

from __future__ import annotations

import uuid

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.dependencies import SessionDep, SettingsDep
from hub.messages.service import messages_to_party
from hub.models import Agency
from hub.notices.consent import consents_of_party, record_consent
from hub.notices.service import inbox, mark_read, notice_of_party
from hub.web.pages import CitizenPage, page_language, page_router, posted_form, render

router = page_router()


async def _agency_names(session: SessionDep, agency_ids: set[str]) -> dict[str, str]:
    names = {}
    for agency_id in agency_ids:
        agency = await session.get(Agency, agency_id)
        names[agency_id] = agency.name if agency else agency_id
    return names


@router.get("/notices", response_class=HTMLResponse)
async def notices_page(request: Request, viewer: CitizenPage, session: SessionDep) -> Response:
    """The notices agencies sent the citizen, newest first, the unread ones marked."""
    assert viewer.party_id is not None
    notices = await inbox(session, viewer.party_id)
    messages = await messages_to_party(session, viewer.party_id)
    agencies = await _agency_names(
        session,
        {notice.agency_id for notice in notices} | {case.agency_id for _, case in messages},
    )
    return render(
        request,
        "pages/notices.html",
        {"notices": notices, "messages": messages, "agencies": agencies},
        viewer=viewer,
    )


@router.get("/notices/{notice_id}", response_class=HTMLResponse)
async def notice_page(
    notice_id: uuid.UUID, request: Request, viewer: CitizenPage, session: SessionDep
) -> Response:
    """One notice; opening it is reading it (the first time counts, and stops its escalation
    by text or letter)."""
    assert viewer.party_id is not None
    notice = await notice_of_party(session, party_id=viewer.party_id, notice_id=notice_id)
    await mark_read(session, notice)
    agency = await session.get(Agency, notice.agency_id)
    return render(
        request,
        "pages/notice.html",
        {"notice": notice, "agency": agency.name if agency else notice.agency_id},
        viewer=viewer,
    )


@router.get("/permissions", response_class=HTMLResponse)
async def permissions_page(request: Request, viewer: CitizenPage, session: SessionDep) -> Response:
    """Per topic of every agency: may it use the citizen's data to tell them about it?"""
    assert viewer.party_id is not None
    answers = await consents_of_party(session, viewer.party_id)
    agencies = await _agency_names(session, {answer.topic.agency_id for answer in answers})
    return render(
        request,
        "pages/permissions.html",
        {
            "answers": answers,
            "agencies": agencies,
            "title_lang": page_language(request),
            "saved": request.query_params.get("saved") == "1",
        },
        viewer=viewer,
    )


@router.post("/permissions", response_class=RedirectResponse)
async def save_permissions(
    request: Request, viewer: CitizenPage, session: SessionDep, settings: SettingsDep
) -> Response:
    """Record the answers that changed; each becomes a new line in the topic's history, and an
    answer left as it was adds nothing."""
    assert viewer.party_id is not None
    fields = await posted_form(request, settings)
    for answer in await consents_of_party(session, viewer.party_id):
        chosen = fields.get(f"topic-{answer.topic.id}")
        if chosen not in ("yes", "no"):
            continue
        granted = chosen == "yes"
        if answer.consent is not None and answer.consent.granted == granted:
            continue
        await record_consent(
            session,
            party_id=viewer.party_id,
            topic=answer.topic,
            granted=granted,
            recorded_by_kind="citizen",
            recorded_by_id=viewer.id,
            source="portal",
        )
    return RedirectResponse("/permissions?saved=1", status_code=303)
