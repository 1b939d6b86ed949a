"""The citizen's download of everything the hub holds about them (``GET /api/me/export``)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from hub.auth.dependencies import CurrentCitizen
from hub.dependencies import SessionDep, SettingsDep
from hub.documents.routes import content_disposition
from hub.export.service import export_party

router = APIRouter(prefix="/api/me", tags=["your data"])


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "The archive."}},
)
async def export_my_data(
    citizen: CurrentCitizen, session: SessionDep, settings: SettingsDep
) -> StreamingResponse:
    """One zip archive of everything the hub holds about you: your details and preferences,
    mandates given and held, every case with its timeline, messages and documents, notices,
    your answers to consent questions and the access log. ``README.html`` in it says what
    each file is. Always your own data: someone you represent downloads theirs themselves.
    The download is written to your access log."""
    archive = await export_party(
        session, citizen, store=settings.document_store, timezone=settings.timezone
    )
    return StreamingResponse(
        archive.chunks(),
        media_type="application/zip",
        headers={
            "Content-Disposition": content_disposition(archive.filename),
            "Content-Length": str(archive.size),
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
