"""The review queue in the console: mail and texts the hub could not match to a case.

Staff list the items, open one, put it on a case they may see (by case number, or one of the
cases of the sender the hub suggests), discard it with a reason, or link the sender's address
to a party once the citizen reads back a code sent to it. An item linked to a party is party
data: each list or read of it is written to that party's access log, as the API does.
"""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.access.service import Viewer, case_for_viewer, record_access, visible_agency_filter
from hub.cases.service import record_case_access
from hub.config import Settings
from hub.dependencies import BrokerDep, CatalogDep, SessionDep, SettingsDep
from hub.errors import Conflict, NotFound
from hub.models import Agency, Case, Party, ReviewItem
from hub.review import service
from hub.web.i18n import mark
from hub.web.pages import StaffPage, page_router, posted_form, render

router = page_router()

STATUSES = ("open", "attached", "discarded")
LIST_LIMIT = 100
NO_SUCH_CASE = mark("There is no case with this number that you may see.")
GIVE_A_CASE = mark("Write a case number, or choose one of the cases.")
GIVE_A_REASON = mark("Say why you discard this message.")
WRONG_CODE = mark("The code is not right.")
CODE_VOID = mark("This code no longer works. Send a new code.")
TOO_MANY_CODES = mark("Enough codes were sent for this message. Link the address another way.")


async def _visible_cases_of(
    session: AsyncSession, viewer: Viewer, party_id: uuid.UUID
) -> list[Case]:
    assert viewer.agency_id is not None
    query = (
        select(Case)
        .where(Case.party_id == party_id)
        .where(visible_agency_filter(viewer.agency_id))  # type: ignore[arg-type]
        .order_by(col(Case.created_at).desc())
    )
    return list((await session.exec(query)).all())


async def _case_by_reference(session: AsyncSession, viewer: Viewer, reference: str) -> Case | None:
    """The case with this number, if the viewer's agency may see it."""
    found = (
        await session.exec(select(Case).where(Case.reference == reference.strip().upper()))
    ).first()
    if found is None:
        return None
    try:
        case, _ = await case_for_viewer(session, viewer, found.id)
    except NotFound:
        return None
    return case


async def _chosen_case(
    session: AsyncSession, viewer: Viewer, fields: dict[str, str]
) -> Case | None:
    """The case a form names: by its id (a suggested case's button) or by its number."""
    if case_id := fields.get("case_id", "").strip():
        try:
            case, _ = await case_for_viewer(session, viewer, uuid.UUID(case_id))
        except (NotFound, ValueError):
            return None
        return case
    return await _case_by_reference(session, viewer, fields.get("case_reference", "")[:32])


async def _item_page(
    request: Request,
    *,
    viewer: Viewer,
    session: AsyncSession,
    item: ReviewItem,
    error: str | None = None,
    error_form: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    party = await session.get(Party, item.party_id) if item.party_id else None
    if party is not None:
        await record_access(session, viewer, party_id=party.id, action="read", data="review_item")
    suggested = await _visible_cases_of(session, viewer, party.id) if party else []
    attached_to = None
    if item.case_id is not None:
        try:
            attached_to, _ = await case_for_viewer(session, viewer, item.case_id)
        except NotFound:
            attached_to = None
    verification = service.shown_meta(item).get("verification")
    return render(
        request,
        "pages/review_item.html",
        {
            "item": item,
            # The suggested sender is named only to staff who may see one of their cases.
            "party": party if suggested or attached_to else None,
            "suggested": suggested if item.status == "open" else [],
            "attached_to": attached_to,
            "discard_reason": item.meta.get("discard_reason"),
            "documents": await service.documents_of_item(session, item.id),
            "verification": verification if isinstance(verification, dict) else None,
            "error": error,
            "error_form": error_form,
            "done": request.query_params.get("done"),
        },
        status_code=status_code,
        viewer=viewer,
    )


@router.get("/console/review", response_class=HTMLResponse)
async def review_queue(
    request: Request,
    viewer: StaffPage,
    session: SessionDep,
    status: Literal["open", "attached", "discarded"] = "open",
) -> Response:
    """Mail and texts that matched no case, newest first: open ones by default, or those
    attached or discarded."""
    items = await service.list_review_items(session, status=status, limit=LIST_LIMIT)
    for party_id in dict.fromkeys(item.party_id for item in items if item.party_id):
        await record_access(session, viewer, party_id=party_id, action="list", data="review_item")
    return render(
        request,
        "pages/review.html",
        {
            "items": items,
            "status": status,
            "statuses": STATUSES,
            "done": request.query_params.get("done"),
        },
        viewer=viewer,
    )


@router.get("/console/review/{item_id}", response_class=HTMLResponse)
async def review_item(
    item_id: uuid.UUID, request: Request, viewer: StaffPage, session: SessionDep
) -> Response:
    """One item in full: who sent it, why it is here, its text and files, and what can be
    done with it."""
    item = await service.get_review_item(session, item_id)
    return await _item_page(request, viewer=viewer, session=session, item=item)


@router.post("/console/review/{item_id}/attach", response_class=HTMLResponse)
async def attach_item(
    item_id: uuid.UUID,
    request: Request,
    viewer: StaffPage,
    session: SessionDep,
    catalog: CatalogDep,
    broker: BrokerDep,
    settings: SettingsDep,
) -> Response:
    """Put the item on a case the staff member may see, as a message from the case's party."""
    fields = await posted_form(request, settings)
    item = await service.get_review_item(session, item_id, for_update=True)
    if not (fields.get("case_id", "").strip() or fields.get("case_reference", "").strip()):
        return await _item_page(
            request,
            viewer=viewer,
            session=session,
            item=item,
            error=GIVE_A_CASE,
            error_form="attach",
            status_code=422,
        )
    case = await _chosen_case(session, viewer, fields)
    if case is None:
        return await _item_page(
            request,
            viewer=viewer,
            session=session,
            item=item,
            error=NO_SUCH_CASE,
            error_form="attach",
            status_code=422,
        )
    await service.attach_review_item(
        session, item=item, case=case, staff=viewer.actor(), broker=broker
    )
    await record_case_access(session, viewer, case, catalog, action="change", data="case")
    return RedirectResponse(f"/console/review/{item.id}?done=attached", status_code=303)


@router.post("/console/review/{item_id}/discard", response_class=HTMLResponse)
async def discard_item(
    item_id: uuid.UUID,
    request: Request,
    viewer: StaffPage,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """Close the item without a case, keeping the reason."""
    fields = await posted_form(request, settings)
    item = await service.get_review_item(session, item_id, for_update=True)
    reason = fields.get("reason", "").strip()[:500]
    if not reason:
        return await _item_page(
            request,
            viewer=viewer,
            session=session,
            item=item,
            error=GIVE_A_REASON,
            error_form="discard",
            status_code=422,
        )
    await service.discard_review_item(
        session, item=item, staff_id=uuid.UUID(viewer.id), reason=reason
    )
    return RedirectResponse("/console/review?done=discarded", status_code=303)


@router.post("/console/review/{item_id}/verification", response_class=HTMLResponse)
async def start_verification(
    item_id: uuid.UUID,
    request: Request,
    viewer: StaffPage,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """Send a one-time code to the item's sender address, to link it to the party of a case
    the staff member may see once the citizen reads the code back."""
    fields = await posted_form(request, settings)
    item = await service.get_review_item(session, item_id, for_update=True)
    case = await _chosen_case(session, viewer, fields)
    party = await session.get(Party, case.party_id) if case else None
    if party is None:
        return await _item_page(
            request,
            viewer=viewer,
            session=session,
            item=item,
            error=NO_SUCH_CASE,
            error_form="verify",
            status_code=422,
        )
    if int((item.meta.get("verification") or {}).get("sends", 0)) >= service.VERIFICATION_SENDS:
        return await _item_page(
            request,
            viewer=viewer,
            session=session,
            item=item,
            error=TOO_MANY_CODES,
            error_form="verify",
            status_code=429,
        )
    assert viewer.agency_id is not None
    agency = await session.get(Agency, viewer.agency_id)
    await record_access(session, viewer, party_id=party.id, action="change", data="party_address")
    await service.start_address_verification(
        session,
        item=item,
        party=party,
        staff=viewer.actor(),
        agency_name=agency.name if agency else viewer.agency_id,
        secret=settings.secret_key.get_secret_value(),
        minutes=settings.login_code_minutes,
    )
    return RedirectResponse(f"/console/review/{item.id}?done=code_sent", status_code=303)


async def _confirm(
    session: AsyncSession, item: ReviewItem, code: str, settings: Settings
) -> service.VerificationResult | None:
    """The outcome of the code; None when no code can be checked any more."""
    try:
        return await service.confirm_address_verification(
            session,
            item=item,
            code=code,
            secret=settings.secret_key.get_secret_value(),
            max_attempts=settings.login_code_attempts,
        )
    except Conflict:
        return None


@router.post("/console/review/{item_id}/verification/confirm", response_class=HTMLResponse)
async def confirm_verification(
    item_id: uuid.UUID,
    request: Request,
    viewer: StaffPage,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """The code the citizen read out: when right, the sender's address becomes the party's,
    verified. A wrong code uses up an attempt, kept: the page answers without raising, so
    the attempt is committed."""
    fields = await posted_form(request, settings)
    item = await service.get_review_item(session, item_id, for_update=True)
    pending = item.meta.get("verification") or {}
    if pending.get("party_id") and not await _visible_cases_of(
        session, viewer, uuid.UUID(pending["party_id"])
    ):
        raise NotFound("No such party.")
    code = "".join(fields.get("code", "").split())[:12]
    result = await _confirm(session, item, code, settings)
    if result is None or not result.verified or result.address is None:
        return await _item_page(
            request,
            viewer=viewer,
            session=session,
            item=item,
            error=CODE_VOID if result is None or result.attempts_left <= 0 else WRONG_CODE,
            error_form="confirm",
            status_code=422,
        )
    await record_access(
        session, viewer, party_id=result.address.party_id, action="change", data="party_address"
    )
    return RedirectResponse(f"/console/review/{item.id}?done=verified", status_code=303)
