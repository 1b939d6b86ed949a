"""Bulk notice jobs API: post a file of notices, follow its progress, cancel it, download the
rows it rejected."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from hub.access.service import Viewer
from hub.auth.dependencies import CurrentAgency, CurrentStaffOrAgency
from hub.dependencies import SessionDep, SettingsDep, get_database
from hub.errors import HubError
from hub.models import NoticeJob
from hub.notices.jobs import (
    CONTENT_TYPES,
    cancel_job,
    create_job,
    job_of_agency,
    jobs_of_agency,
    rejection_report,
    store_stream,
)

router = APIRouter(prefix="/api", tags=["notices"])


class UnsupportedFormat(HubError):
    status = 415
    title = "Unsupported media type"
    type_suffix = "unsupported-media-type"


class JobOut(BaseModel):
    """A bulk job and how far it got. Every row read is counted once: ``accepted`` (a notice
    that goes out), ``not_sent`` (no consent, daily cap), ``duplicates`` (made before) or
    ``rejected`` (see the report)."""

    id: uuid.UUID
    status: str
    format: str
    filename: str
    size: int
    bytes_read: int
    percent: float
    rows_read: int
    accepted: int
    not_sent: int
    duplicates: int
    rejected: int
    error: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    rejections_url: str

    @classmethod
    def of(cls, job: NoticeJob) -> JobOut:
        done = job.status == "done"
        return cls(
            id=job.id,
            status=job.status,
            format=job.format,
            filename=job.filename,
            size=job.size,
            bytes_read=job.offset,
            percent=100.0 if done else round(100 * job.offset / job.size, 1) if job.size else 0.0,
            rows_read=job.next_row,
            accepted=job.accepted,
            not_sent=job.not_sent,
            duplicates=job.duplicates,
            rejected=job.rejected,
            error=job.error,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            rejections_url=f"/api/notice-jobs/{job.id}/rejections",
        )


def agency_of(viewer: Viewer) -> str:
    assert viewer.agency_id is not None  # staff and agency systems always belong to one
    return viewer.agency_id


UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "NDJSON: one notice a line, as POST /api/notices takes it. CSV: a "
        "header row naming bsn or kvk_number, topic and template (and optionally journey_id, "
        "case_id, important, escalate_after_days, dedupe_key); every other column is a "
        "placeholder of the template.",
        "content": {
            "application/x-ndjson": {"schema": {"type": "string", "format": "binary"}},
            "text/csv": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post(
    "/notice-jobs",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra=UPLOAD_BODY,
    responses={413: {"description": "File too large"}, 415: {"description": "Not NDJSON/CSV"}},
)
async def post_job(
    request: Request,
    viewer: CurrentAgency,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    filename: str | None = Query(default=None, max_length=200),
) -> JobOut:
    """Post a file of notices (up to a million rows and more) as a job: 202 with the job,
    which a worker then routes batch by batch. Follow it with GET on ``Location``."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    format = CONTENT_TYPES.get(media)
    if format is None:
        raise UnsupportedFormat(
            "Send the file as application/x-ndjson (one JSON notice a line) or text/csv."
        )
    # The upload may take minutes: hold no database connection while it streams in.
    await session.commit()
    stored = await store_stream(
        settings.document_store, request.stream(), max_bytes=settings.notice_job_max_bytes
    )
    job = await create_job(
        session,
        agency_id=agency_of(viewer),
        format=format,
        stored=stored,
        store=settings.document_store,
        filename=filename,
        uploaded_by_kind="agency",
        uploaded_by_id=viewer.id,
    )
    response.headers["Location"] = f"/api/notice-jobs/{job.id}"
    return JobOut.of(job)


@router.get("/notice-jobs")
async def list_jobs(viewer: CurrentStaffOrAgency, session: SessionDep) -> list[JobOut]:
    """The agency's latest 50 jobs, newest first."""
    return [JobOut.of(job) for job in await jobs_of_agency(session, agency_of(viewer))]


@router.get("/notice-jobs/{job_id}")
async def get_job(job_id: uuid.UUID, viewer: CurrentStaffOrAgency, session: SessionDep) -> JobOut:
    """One of the agency's jobs and its progress."""
    return JobOut.of(await job_of_agency(session, agency_id=agency_of(viewer), job_id=job_id))


@router.post("/notice-jobs/{job_id}/cancel")
async def post_cancel(job_id: uuid.UUID, viewer: CurrentAgency, session: SessionDep) -> JobOut:
    """Stop the job after the batch it is writing (what was sent stays sent); 409 when it
    already finished."""
    job = await job_of_agency(session, agency_id=agency_of(viewer), job_id=job_id)
    return JobOut.of(await cancel_job(session, job))


@router.get(
    "/notice-jobs/{job_id}/rejections",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "row,error,content"}},
)
async def get_rejections(
    job_id: uuid.UUID, viewer: CurrentStaffOrAgency, session: SessionDep, request: Request
) -> StreamingResponse:
    """The rows the job rejected, as CSV (row number, why, the row as it was), so far."""
    job = await job_of_agency(session, agency_id=agency_of(viewer), job_id=job_id)
    await session.commit()
    stem = job.filename.rsplit(".", 1)[0] or "notices"
    return StreamingResponse(
        rejection_report(get_database(request), job.id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{stem}-rejected.csv"'},
    )
