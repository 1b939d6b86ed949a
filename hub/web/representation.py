"""Representation: mandates the citizen grants and revokes, and acting for someone represented.

A citizen names a representative by BSN and name (both must belong to one person; the page
says the same whether the BSN is unknown or the name wrong), for all kinds of case or chosen
ones, from one day until another. A representative switches to a person they represent
("act for"), sees that person's cases the mandates cover, opens them and answers what is
asked on them — each read written to that person's access log — and switches back. Every
page says so while they act (hub/web/acting.py). Revoking takes effect on the next request.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.access.service import Viewer, record_access
from hub.cases import service as cases
from hub.clock import local_today
from hub.config import Settings
from hub.dependencies import CatalogDep, SessionDep, SettingsDep
from hub.errors import NotFound
from hub.models import Agency
from hub.parties.mandates import (
    MandateRefused,
    acting_for,
    grant_mandate,
    last_day,
    mandates_granted,
    mandates_received,
    revoke_mandate,
)
from hub.parties.service import get_party
from hub.web.acting import ACTING_COOKIE, acting_cookie
from hub.web.i18n import mark
from hub.web.pages import CitizenPage, page_language, page_router, render
from hub.web.security import CSRF_FIELD, check_csrf
from journeys.catalog import Catalog

router = page_router()

REPRESENTATION = "/representation"
# What the page says when a mandate cannot be given; the template translates it.
REFUSED = {
    "bsn_invalid": mark("This BSN is not right. A BSN has 9 digits. Check it and try again."),
    "no_match": mark(
        "We cannot find a person with this BSN and this name. Check both and try again."
    ),
    "yourself": mark("You cannot give a mandate to yourself."),
    "no_journeys": mark("Choose at least one kind of case, or choose all cases."),
    "unknown_journey": mark("Choose at least one kind of case, or choose all cases."),
    "starts_in_the_past": mark("The start date cannot be before today."),
    "ends_before_it_starts": mark("The end date cannot be before the start date."),
}
DATE_INVALID = mark("Write the date as day, month and year, for example 31-12-2026.")


async def _fields(request: Request, settings: Settings) -> list[tuple[str, str]]:
    """The posted form's text fields, repeated ones included, once its CSRF token is checked.
    (A form of one checkbox per kind of case may have more fields than other pages' forms.)"""
    form = await request.form(max_files=0, max_fields=200, max_part_size=16 * 1024)
    fields = [(key, value) for key, value in form.multi_items() if isinstance(value, str)]
    check_csrf(request, settings, dict(fields).get(CSRF_FIELD))
    return fields


def _journey_titles(catalog: Catalog, lang: str) -> dict[str, str]:
    return {definition.id: definition.title.get(lang) for definition in catalog.all()}


def _date(raw: str) -> dt.date | None:
    """A date as a date field sends it (2026-12-31) or as people write it (31-12-2026)."""
    text = raw.strip()
    if not text:
        return None
    if found := re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text):
        year, month, day = found.groups()
    elif found := re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})", text):
        day, month, year = found.groups()
    else:
        raise ValueError(text)
    return dt.date(int(year), int(month), int(day))


async def _page(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    *,
    catalog: Catalog,
    settings: Settings,
    form: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    assert viewer.party_id is not None
    lang = page_language(request)
    granted = await mandates_granted(session, viewer.party_id)
    received = await mandates_received(session, viewer.party_id)
    context: dict[str, Any] = {
        "granted": granted,
        "received": received,
        "last_days": {
            view.mandate.id: last_day(view.mandate, settings.timezone)
            for view in granted + received
        },
        "journeys": _journey_titles(catalog, lang),
        "form": form or {"scope": "all", "journeys": []},
        "error": error,
        "today": local_today(settings.timezone),
        "done": request.query_params.get("done", ""),
    }
    return render(
        request, "pages/representation.html", context, viewer=viewer, status_code=status_code
    )


@router.get("/representation", response_class=HTMLResponse)
async def representation_page(
    request: Request,
    viewer: CitizenPage,
    session: SessionDep,
    catalog: CatalogDep,
    settings: SettingsDep,
) -> Response:
    """Whom the citizen lets act for them, for whom they may act, and a form to give a
    mandate."""
    return await _page(request, session, viewer, catalog=catalog, settings=settings)


@router.post("/representation/mandates", response_class=HTMLResponse)
async def give_mandate(
    request: Request,
    viewer: CitizenPage,
    session: SessionDep,
    catalog: CatalogDep,
    settings: SettingsDep,
) -> Response:
    """Give a mandate; a refusal comes back on the page with its reason and what was typed."""
    assert viewer.party_id is not None
    fields = await _fields(request, settings)
    single = dict(fields)
    form: dict[str, Any] = {
        "bsn": single.get("bsn", "")[:20],
        "name": single.get("name", "")[:300],
        "scope": "chosen" if single.get("scope") == "chosen" else "all",
        "journeys": [value for key, value in fields if key == "journey"],
        "valid_from": single.get("valid_from", "")[:20],
        "valid_until": single.get("valid_until", "")[:20],
    }

    async def again(error: str) -> HTMLResponse:
        return await _page(
            request,
            session,
            viewer,
            catalog=catalog,
            settings=settings,
            form=form,
            error=error,
            status_code=422,
        )

    try:
        valid_from = _date(form["valid_from"])
        valid_until = _date(form["valid_until"])
    except ValueError:
        return await again(DATE_INVALID)
    try:
        await grant_mandate(
            session,
            party=await get_party(session, viewer.party_id),
            representative_bsn=form["bsn"],
            representative_name=form["name"],
            journeys=form["journeys"] if form["scope"] == "chosen" else None,
            valid_from=valid_from,
            valid_until=valid_until,
            catalog=catalog,
            timezone=settings.timezone,
        )
    except MandateRefused as refused:
        return await again(REFUSED[refused.reason])
    return RedirectResponse(f"{REPRESENTATION}?done=granted", status_code=303)


@router.post("/representation/revoke", response_class=RedirectResponse)
async def revoke(
    request: Request, viewer: CitizenPage, session: SessionDep, settings: SettingsDep
) -> Response:
    """End a mandate now, one the citizen gave or was given."""
    assert viewer.party_id is not None
    fields = dict(await _fields(request, settings))
    try:
        mandate_id = uuid.UUID(fields.get("mandate_id", ""))
    except ValueError:
        raise NotFound("No such mandate.") from None
    await revoke_mandate(session, mandate_id=mandate_id, by_party_id=viewer.party_id)
    return RedirectResponse(f"{REPRESENTATION}?done=revoked", status_code=303)


@router.post("/representation/act", response_class=RedirectResponse)
async def act_for(
    request: Request, viewer: CitizenPage, session: SessionDep, settings: SettingsDep
) -> Response:
    """Switch to acting for a person the citizen represents now; their cases come next."""
    assert viewer.party_id is not None
    fields = dict(await _fields(request, settings))
    try:
        party_id = uuid.UUID(fields.get("party_id", ""))
    except ValueError:
        raise NotFound("You do not represent this person.") from None
    if await acting_for(session, representative_id=viewer.party_id, party_id=party_id) is None:
        raise NotFound("You do not represent this person.")
    response = RedirectResponse("/representation/cases", status_code=303)
    response.set_cookie(
        ACTING_COOKIE,
        acting_cookie(party_id, viewer),
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )
    return response


@router.post("/representation/stop", response_class=RedirectResponse)
async def stop_acting(request: Request, viewer: CitizenPage, settings: SettingsDep) -> Response:
    """Switch back to acting for oneself."""
    await _fields(request, settings)
    response = RedirectResponse(f"{REPRESENTATION}?done=stopped", status_code=303)
    response.delete_cookie(
        ACTING_COOKIE, path="/", httponly=True, samesite="lax", secure=settings.cookie_secure
    )
    return response


@router.get("/representation/cases", response_class=HTMLResponse)
async def represented_cases(
    request: Request,
    viewer: CitizenPage,
    session: SessionDep,
    catalog: CatalogDep,
    settings: SettingsDep,
) -> Response:
    """The cases of the person the citizen acts for, as far as the mandates cover them; each
    case listed is written to that person's access log."""
    assert viewer.party_id is not None
    lang = page_language(request)
    party = getattr(request.state, "acting_for", None)
    rows: list[dict[str, Any]] = []
    if party is not None:
        found = await acting_for(session, representative_id=viewer.party_id, party_id=party.id)
        mandates = found[1] if found else []
        for case in await cases.cases_of_party(session, party.id):
            if not any(m.covers(case.journey_id) for m in mandates):
                continue
            await record_access(
                session, viewer, party_id=party.id, action="read", data="case_list", case=case
            )
            agency = await session.get(Agency, case.agency_id)
            rows.append(
                {
                    "case": case,
                    "title": cases.definition_of(catalog, case).title.get(lang),
                    "agency": agency.name if agency else case.agency_id,
                    "view": cases.case_status(catalog, case, lang=lang, timezone=settings.timezone),
                }
            )
    return render(
        request, "pages/representation_cases.html", {"party": party, "rows": rows}, viewer=viewer
    )
