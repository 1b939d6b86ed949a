"""``hub notices push FILE``: a bulk job from the command line, run in this process.

The file is stored and queued exactly as ``POST /api/notice-jobs`` does, then routed here
batch by batch (instead of by a worker) while a progress bar follows the job's byte offset.
A push that is interrupted leaves a job that ``hub notices resume JOB`` — or any worker, once
the claim lapses — finishes without sending a row twice.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from hub.config import Settings
from hub.db import Database
from hub.errors import Conflict, InvalidInput, NotFound
from hub.models import Agency, NoticeJob
from hub.notices.jobs import (
    BATCH_ROWS,
    Format,
    claim_job,
    create_job,
    rejection_report,
    run_job,
    store_stream,
)
from journeys.catalog import Catalog

SUFFIXES: dict[str, Format] = {".ndjson": "ndjson", ".jsonl": "ndjson", ".csv": "csv"}
CHUNK = 1 << 20


def format_of(path: Path, given: str | None) -> Format:
    if given is not None:
        if given not in ("ndjson", "csv"):
            raise InvalidInput(f"--format must be ndjson or csv, not '{given}'.")
        return "csv" if given == "csv" else "ndjson"
    found = SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise InvalidInput(
            f"Cannot tell the format of '{path.name}' from its name: give --format ndjson or csv."
        )
    return found


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            yield chunk


async def queue_file(
    database: Database, settings: Settings, *, path: Path, agency_id: str, format: Format
) -> NoticeJob:
    """Store the file and queue its job, as the API does."""
    async with database.session() as session:
        if await session.get(Agency, agency_id) is None:
            raise NotFound(f"There is no agency '{agency_id}'.")
    stored = await store_stream(
        settings.document_store, _chunks(path), max_bytes=settings.notice_job_max_bytes
    )
    async with database.session() as session:
        return await create_job(
            session,
            agency_id=agency_id,
            format=format,
            stored=stored,
            store=settings.document_store,
            filename=path.name,
            uploaded_by_kind="cli",
            uploaded_by_id=None,
        )


async def run_here(
    database: Database,
    settings: Settings,
    catalog: Catalog,
    job_id: uuid.UUID,
    *,
    batch_rows: int = BATCH_ROWS,
    progress: Callable[[NoticeJob], None] | None = None,
) -> NoticeJob:
    """Take the job (queued, or interrupted and no longer claimed) and run it to its end."""
    claim = settings.notice_job_claim_seconds
    job = await claim_job(database, job_id=job_id, claim_seconds=claim)
    if job is None:
        async with database.session() as session:
            found = await session.get(NoticeJob, job_id)
        if found is None:
            raise NotFound(f"There is no notice job {job_id}.")
        if found.status in ("done", "cancelled", "failed"):
            raise Conflict(f"Notice job {job_id} is already {found.status}.")
        raise Conflict(
            f"Notice job {job_id} is being run by another process (its claim lasts until "
            f"{found.claimed_until:%H:%M:%S} UTC); try again after that."
        )
    if progress:
        progress(job)
    return await run_job(
        database,
        job,
        store=settings.document_store,
        catalog=catalog,
        timezone=settings.timezone,
        base_url=settings.base_url,
        batch_rows=batch_rows,
        claim_seconds=claim,
        progress=progress,
    )


async def write_report(database: Database, job_id: uuid.UUID, target: Path) -> None:
    """The job's rejected rows as CSV at ``target``."""
    with target.open("w", encoding="utf-8", newline="") as out:
        async for line in rejection_report(database, job_id):
            out.write(line)
