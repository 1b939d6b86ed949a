"""The citizen's preferences: the channel for notices, the language and needs, each change kept.

A channel the hub cannot reach the citizen on (no verified address of that kind) is refused
with a message saying why. Choosing a language also switches the pages to it. The page shows
the citizen's own data to the citizen, which is not an access by someone else and is not
logged.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.access.service import Viewer
from hub.dependencies import SessionDep, SettingsDep
from hub.messages.service import address_for
from hub.models import Party
from hub.parties.preferences import (
    CHANNELS,
    LANGUAGES,
    NEEDS,
    ChangedBy,
    PreferenceRefused,
    Preferences,
    change_preferences,
    preference_history,
    preferences_of,
)
from hub.parties.service import get_party
from hub.web.i18n import mark
from hub.web.pages import CitizenPage, page_router, posted_form, render, set_language_cookie

router = page_router()

# What the page says when a choice cannot be kept; the template translates it.
REFUSED = {
    "no_email": mark(
        "You can only choose email when we have a verified email address for you. We do not "
        "have one yet."
    ),
    "no_phone": mark(
        "You can only choose text messages when we have a verified mobile number for you. We "
        "do not have one yet."
    ),
    "no_postal_address": mark(
        "You can only choose letters when we have your postal address. We do not have it yet."
    ),
    "digital_channel_without_digital_contact": mark(
        "You chose no digital contact. Then we send you everything by letter. Choose "
        "'By letter', or untick 'No digital contact'."
    ),
}
CHOOSE_AN_OPTION = mark("Choose one of the options.")


async def _page(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    party: Party,
    *,
    chosen: Preferences | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context: dict[str, Any] = {
        "chosen": chosen or preferences_of(party),
        "channels": CHANNELS,
        "languages": LANGUAGES,
        "needs": NEEDS,
        "addresses": {channel: await address_for(session, party, channel) for channel in CHANNELS},
        "history": await preference_history(session, party.id),
        "error": error,
        "saved": request.query_params.get("saved") == "1",
    }
    return render(
        request, "pages/preferences.html", context, viewer=viewer, status_code=status_code
    )


@router.get("/preferences", response_class=HTMLResponse)
async def preferences_page(request: Request, viewer: CitizenPage, session: SessionDep) -> Response:
    """How the citizen wants to hear from us, and every change made to it."""
    assert viewer.party_id is not None
    party = await get_party(session, viewer.party_id)
    return await _page(request, session, viewer, party)


@router.post("/preferences", response_class=HTMLResponse)
async def save_preferences(
    request: Request, viewer: CitizenPage, session: SessionDep, settings: SettingsDep
) -> Response:
    """Keep the choices that changed, each as a line in the history; a choice the hub cannot
    honour comes back with its reason and nothing is changed."""
    assert viewer.party_id is not None
    fields = await posted_form(request, settings)
    party = await get_party(session, viewer.party_id)
    current = preferences_of(party)
    chosen = Preferences(
        channel=fields.get("channel", current.channel),
        language=fields.get("language", current.language),
        needs=tuple(need for need in NEEDS if fields.get(f"need-{need}") == "yes"),
    )
    try:
        changes = await change_preferences(
            session,
            party,
            channel=chosen.channel,
            language=chosen.language,
            needs=list(chosen.needs),
            changed_by=ChangedBy(kind="citizen", id=viewer.id, name=viewer.name),
            source="portal",
        )
    except PreferenceRefused as refused:
        return await _page(
            request,
            session,
            viewer,
            party,
            chosen=chosen,
            error=REFUSED.get(refused.reason, CHOOSE_AN_OPTION),
            status_code=422,
        )
    response = RedirectResponse("/preferences?saved=1", status_code=303)
    if any(change.preference == "language" for change in changes):
        set_language_cookie(response, party.preferred_language, settings)
    return response
