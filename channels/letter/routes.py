"""The print queue: a print-and-post provider or mail room collects letters, reports them posted.

Callers are the agency's system (its API key) or its staff; each sees only its own agency's
letters — another agency's print job is "not found", as a missing one. Every listing and
download of a letter is an access to the addressee's data and is logged as such.

The counter's printed status summary lives here too: it is a letter in the same layout.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.letter import service
from channels.letter.compose import compose_summary
from channels.letter.layout import render_pdf
from channels.letter.schemas import PrintJobOut
from hub.access.service import Viewer, case_for_viewer, record_access
from hub.auth.dependencies import CurrentStaffOrAgency, CurrentViewer
from hub.cases.service import case_status, definition_of
from hub.clock import local_today
from hub.dependencies import BrokerDep, CatalogDep, SessionDep, SettingsDep
from hub.errors import Forbidden
from hub.models import Agency, Party, StaffMember
from journeys.catalog import Catalog

router = APIRouter(prefix="/api", tags=["letters"])

PDF = "application/pdf"


def _pdf_response(content: bytes, filename: str, *, disposition: str) -> Response:
    digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
    return Response(
        content=content,
        media_type=PDF,
        headers={
            "Content-Disposition": f'{disposition}; filename="{filename}"',
            # RFC 9530: lets the printer check it received the letter as the hub stored it.
            "Repr-Digest": f"sha-256=:{digest}:",
            "Cache-Control": "no-store",
        },
    )


async def _log_read(
    session: AsyncSession,
    viewer: Viewer,
    catalog: Catalog,
    letter: service.QueuedLetter,
    data: str,
) -> None:
    party_id = letter.document.party_id or (letter.case.party_id if letter.case else None)
    if party_id is None:
        return
    activity = definition_of(catalog, letter.case).processing_activity if letter.case else None
    await record_access(
        session,
        viewer,
        party_id=party_id,
        action="read",
        data=data,
        case=letter.case,
        activity_code=activity,
    )


@router.get("/print-jobs")
async def list_print_jobs(
    viewer: CurrentStaffOrAgency,
    session: SessionDep,
    catalog: CatalogDep,
    status: Annotated[
        service.PrintStatus | None, Query(description="queued, collected or posted")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[PrintJobOut]:
    """The agency's letters in the print queue, oldest first; ``?status=queued`` for those
    still to collect."""
    assert viewer.agency_id is not None
    letters = await service.print_queue(
        session, agency_id=viewer.agency_id, status=status, limit=limit
    )
    for letter in letters:
        await _log_read(session, viewer, catalog, letter, "letter_address")
    return [PrintJobOut.of(letter) for letter in letters]


@router.get(
    "/print-jobs/{job_id}/pdf",
    response_class=Response,
    responses={200: {"content": {PDF: {}}, "description": "The letter, print-ready."}},
)
async def print_job_pdf(
    job_id: uuid.UUID,
    viewer: CurrentStaffOrAgency,
    session: SessionDep,
    settings: SettingsDep,
    catalog: CatalogDep,
) -> Response:
    """The letter's PDF, checked against the checksum recorded when it was made."""
    assert viewer.agency_id is not None
    letter = await service.letter_of_agency(session, agency_id=viewer.agency_id, job_id=job_id)
    content = service.letter_pdf(settings.document_store, letter.document)
    await _log_read(session, viewer, catalog, letter, "letter")
    name = letter.case.reference if letter.case else str(letter.job.id)
    return _pdf_response(content, f"letter-{name}.pdf", disposition="attachment")


@router.post("/print-jobs/{job_id}/collected")
async def collected(
    job_id: uuid.UUID, viewer: CurrentStaffOrAgency, session: SessionDep
) -> PrintJobOut:
    """The letter was collected for printing. Saying so again is harmless; once posted, 409."""
    assert viewer.agency_id is not None
    letter = await service.letter_of_agency(
        session, agency_id=viewer.agency_id, job_id=job_id, for_update=True
    )
    await service.mark_collected(session, letter.job)
    return PrintJobOut.of(letter)


@router.post("/print-jobs/{job_id}/posted")
async def posted(
    job_id: uuid.UUID,
    viewer: CurrentStaffOrAgency,
    session: SessionDep,
    settings: SettingsDep,
    broker: BrokerDep,
) -> PrintJobOut:
    """The letter was posted: its delivery is complete and the citizen sees when it went.
    A mail room that prints and posts in one go may skip "collected"; saying "posted" again
    changes nothing."""
    assert viewer.agency_id is not None
    letter = await service.letter_of_agency(
        session, agency_id=viewer.agency_id, job_id=job_id, for_update=True
    )
    await service.mark_posted(
        session, letter.job, actor=viewer.actor(), timezone=settings.timezone, broker=broker
    )
    return PrintJobOut.of(letter)


@router.get(
    "/cases/{case_id}/summary.pdf",
    response_class=Response,
    responses={200: {"content": {PDF: {}}, "description": "The case's status, printable."}},
)
async def status_summary(
    case_id: uuid.UUID,
    viewer: CurrentViewer,
    session: SessionDep,
    settings: SettingsDep,
    catalog: CatalogDep,
    lang: Annotated[str | None, Query(pattern="^(nl|en)$")] = None,
) -> Response:
    """Where the case stands, as a letter to print at the counter or at home: stage k of n,
    what happens now and next, whose turn, the dates, and the named contact.

    For the citizen (or their representative) and for staff of an agency that takes part in
    the case; staff reads are logged.
    """
    if viewer.kind == "agency":
        raise Forbidden("The status summary is printed by staff or the citizen.")
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
    party = await session.get(Party, case.party_id)
    agency = await session.get(Agency, case.agency_id)
    owner = await session.get(StaffMember, case.owner_id) if case.owner_id else None
    assert party is not None
    language = lang or party.preferred_language
    today = local_today(settings.timezone)
    view = case_status(catalog, case, lang=language, today=today, timezone=settings.timezone)
    letter = compose_summary(
        view=view,
        language=language,
        case_title=definition.title.get(language),
        case_reference=case.reference,
        case_path=f"/cases/{case.id}",
        agency_name=agency.name if agency else case.agency_id,
        party_name=party.name,
        address=party.postal_address or "",
        contact_name=owner.display_name if owner else None,
        today=today,
        base_url=settings.base_url,
    )
    content = await asyncio.to_thread(render_pdf, letter)
    return _pdf_response(content, f"status-{case.reference}.pdf", disposition="inline")
