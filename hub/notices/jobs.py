"""Bulk notice jobs: a file of up to millions of notices, stored, then routed batch by batch.

The file (NDJSON: one notice a line, as the single-notice API takes it; or CSV with a header
row) is streamed into the document store when it is posted — memory stays flat however large
it is — and a ``notice_job`` row is queued. A worker (or ``hub notices push``) then reads it
from the job's byte ``offset`` in batches: each batch's rows are parsed and checked here,
routed by :mod:`hub.notices.bulk` (in the database on PostgreSQL), and written in one
transaction together with the job's new offset and counts. So:

- progress is the job row (rows read, accepted, not sent, duplicates, rejected; bytes read of
  the file's size), readable at any time;
- a cancel takes effect between two batches: what was written stays, nothing more is;
- a job whose process died resumes, once its claim has lapsed, after the last batch it
  committed: rows are never routed twice (and the notices' dedupe keys would refuse a second
  notice anyway);
- a row that cannot be used is rejected with its reason and kept for the job's report; the
  rest of the file goes on.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import datetime as dt
import hashlib
import json
import logging
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any, Literal

import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from hub.db import Database, utcnow
from hub.errors import Conflict, InvalidInput, NotFound
from hub.models import Agency, Document, NoticeJob, NoticeJobRejection
from hub.notices.bulk import (
    BatchOutcome,
    BatchRow,
    Gathered,
    JobContext,
    Plan,
    decide,
    gather,
    prepare_batch,
    route_prepared,
    write_plan,
)
from hub.notices.schemas import NoticeIn
from journeys.catalog import Catalog

log = logging.getLogger("hub.notices.jobs")

Format = Literal["ndjson", "csv"]
CONTENT_TYPES: dict[str, Format] = {
    "application/x-ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/json-seq": "ndjson",
    "text/csv": "csv",
}
BATCH_ROWS = 5000
# A row longer than this is rejected without being held in memory.
MAX_ROW_BYTES = 64 * 1024
CLAIM_SECONDS = 60
# Columns of a CSV file that are fields of a notice; every other column is a placeholder.
CSV_FIELDS = (
    "bsn",
    "kvk_number",
    "topic",
    "template",
    "journey_id",
    "case_id",
    "important",
    "escalate_after_days",
    "dedupe_key",
)
TRUE_WORDS = {"true", "1", "yes", "ja", "y", "j"}
FALSE_WORDS = {"false", "0", "no", "nee", "n", ""}
FINISHED = ("done", "cancelled", "failed")


class JobFileRefused(InvalidInput):
    """A bulk file that cannot be a job at all: empty, too large, or a CSV without the
    columns a notice needs."""


class JobFileTooLarge(JobFileRefused):
    status = 413
    title = "Content too large"
    type_suffix = "content-too-large"


# --- storing the file ---------------------------------------------------------------------


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    storage_key: str
    size: int


class _Spool:
    """A file being written into the store: a temporary name until it is complete."""

    def __init__(self, store: Path) -> None:
        store.mkdir(parents=True, exist_ok=True)
        self.store = store
        self.file = tempfile.NamedTemporaryFile(dir=store, prefix=".upload-", delete=False)  # noqa: SIM115
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self.digest.update(chunk)
        self.file.write(chunk)

    def discard(self) -> None:
        self.file.close()
        Path(self.file.name).unlink(missing_ok=True)

    def keep(self) -> StoredFile:
        """Flush to disk and move under the checksum's name (once: the same file twice is
        stored once)."""
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        checksum = self.digest.hexdigest()
        key = f"{checksum[:2]}/{checksum}"
        target = self.store / key
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            Path(self.file.name).unlink()
        else:
            Path(self.file.name).replace(target)
        return StoredFile(sha256=checksum, storage_key=key, size=self.size)


async def store_stream(store: Path, chunks: AsyncIterator[bytes], *, max_bytes: int) -> StoredFile:
    """Write a stream into the document store under its checksum, a chunk at a time."""
    spool = await asyncio.to_thread(_Spool, store)
    try:
        async for chunk in chunks:
            if spool.size + len(chunk) > max_bytes:
                raise JobFileTooLarge(
                    f"The file is larger than {max_bytes:,} bytes, the most a job takes."
                )
            spool.write(chunk)
        return await asyncio.to_thread(spool.keep)
    except BaseException:
        spool.discard()
        raise


def check_file(path: Path, format: Format) -> None:
    """Refuse, before a job is made, a file that holds no row or a CSV whose header lacks
    what every notice needs."""
    with path.open("rb") as file:
        if format == "csv":
            header = read_header(file)
            missing = [name for name in ("topic", "template") if name not in header.names]
            if not {"bsn", "kvk_number"} & set(header.names):
                missing.insert(0, "bsn or kvk_number")
            if missing:
                raise JobFileRefused(
                    "The CSV file's first row must name the columns; missing: "
                    + ", ".join(missing)
                    + "."
                )
            if not file.read(1):
                raise JobFileRefused("The CSV file has a header but no rows.")
        elif not any(line.strip() for line in _limited_lines(file)):
            raise JobFileRefused("The file holds no notices.")


def _limited_lines(file: IO[bytes]) -> Iterator[bytes]:
    while line := file.readline(MAX_ROW_BYTES):
        yield line


async def create_job(
    session: AsyncSession,
    *,
    agency_id: str,
    format: Format,
    stored: StoredFile,
    store: Path,
    filename: str | None,
    uploaded_by_kind: str,
    uploaded_by_id: str | None,
) -> NoticeJob:
    """Check the stored file and queue a job for it."""
    if stored.size == 0:
        raise JobFileRefused("The file is empty.")
    check_file(store / stored.storage_key, format)
    base = Path((filename or "").replace("\\", "/")).name
    name = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*;')[:200]
    name = name.strip(". ") or f"notices.{format}"
    document = Document(
        filename=name,
        content_type="text/csv" if format == "csv" else "application/x-ndjson",
        size=stored.size,
        sha256=stored.sha256,
        storage_key=stored.storage_key,
        source="notice_job",
        uploaded_by_kind=uploaded_by_kind,
        uploaded_by_id=uploaded_by_id,
    )
    session.add(document)
    await session.flush()
    job = NoticeJob(
        agency_id=agency_id,
        format=format,
        document_id=document.id,
        filename=name,
        size=stored.size,
    )
    session.add(job)
    await session.flush()
    return job


# --- reading rows -------------------------------------------------------------------------


@dataclass(frozen=True)
class RawRow:
    """One row of the file: its number, its text, and what it says (or why it can't)."""

    row: int
    content: str
    fields: dict[str, Any] | None
    error: str | None = None


@dataclass(frozen=True)
class Header:
    names: list[str]
    delimiter: str
    end: int  # the byte after the header row


def read_header(file: IO[bytes]) -> Header:
    file.seek(0)
    line = file.readline(MAX_ROW_BYTES)
    text = line.decode("utf-8-sig", errors="replace").rstrip("\r\n")
    delimiter = ";" if text.count(";") > text.count(",") else ","
    names = [name.strip().lower() for name in next(csv.reader([text], delimiter=delimiter), [])]
    return Header(names=names, delimiter=delimiter, end=len(line))


class RowReader:
    """Reads a job's file from a byte offset, a batch of rows at a time.

    ``offset`` is always where the next unread row starts, so it can be stored with the
    batch just read and a later reader started there.
    """

    def __init__(self, path: Path, format: Format, *, offset: int, next_row: int) -> None:
        self.file = path.open("rb")
        self.format = format
        self.header: Header | None = None
        if format == "csv":
            self.header = read_header(self.file)
            offset = max(offset, self.header.end)
        self.file.seek(offset)
        self.offset = offset
        self.next_row = next_row

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> RowReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def read(self, limit: int) -> list[RawRow]:
        rows: list[RawRow] = []
        while len(rows) < limit:
            row = self._next_ndjson() if self.format == "ndjson" else self._next_csv()
            if row is None:
                break
            rows.append(row)
        return rows

    def _line(self) -> tuple[bytes, bool] | None:
        """The next physical line (cut at MAX_ROW_BYTES: True when it was too long)."""
        line = self.file.readline(MAX_ROW_BYTES)
        if not line:
            return None
        self.offset += len(line)
        too_long = False
        while not line.endswith(b"\n") and len(line) >= MAX_ROW_BYTES:
            too_long = True
            rest = self.file.readline(MAX_ROW_BYTES)
            if not rest:
                break
            self.offset += len(rest)
            line = rest
        return line, too_long

    def _take_row(self) -> int:
        self.next_row += 1
        return self.next_row

    def _next_ndjson(self) -> RawRow | None:
        while True:
            read = self._line()
            if read is None:
                return None
            line, too_long = read
            if too_long:
                return RawRow(
                    self._take_row(), "", None, f"The row is longer than {MAX_ROW_BYTES:,} bytes."
                )
            if line.strip():
                break
        number = self._take_row()
        try:
            text = line.decode("utf-8").strip()
        except UnicodeDecodeError:
            return RawRow(number, "", None, "The row is not UTF-8 text.")
        try:
            fields = json.loads(text)
        except ValueError as problem:
            return RawRow(number, text, None, f"The row is not valid JSON: {problem}.")
        if not isinstance(fields, dict):
            return RawRow(number, text, None, "The row is not a JSON object.")
        return RawRow(number, text, fields)

    def _next_csv(self) -> RawRow | None:
        assert self.header is not None
        lines: list[str] = []
        problems: list[str] = []

        def physical() -> Iterator[str]:
            while True:
                read = self._line()
                if read is None:
                    return
                line, too_long = read
                if too_long:
                    problems.append(f"The row is longer than {MAX_ROW_BYTES:,} bytes.")
                    line = b"\n"
                text = codecs.decode(line, "utf-8", errors="replace")
                if "\ufffd" in text and not problems:
                    problems.append("The row is not UTF-8 text.")
                lines.append(text)
                yield text

        reader = csv.reader(physical(), delimiter=self.header.delimiter, strict=True)
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return None
            except csv.Error as problem:
                return RawRow(self._take_row(), "".join(lines)[:2000], None, f"CSV: {problem}.")
            if any(cell.strip() for cell in cells) or problems:
                break
            lines.clear()
        number = self._take_row()
        content = "".join(lines).rstrip("\r\n")
        if problems:
            return RawRow(number, content if "longer" not in problems[0] else "", None, problems[0])
        if len(cells) != len(self.header.names):
            return RawRow(
                number,
                content,
                None,
                f"The row has {len(cells)} cells; the header names {len(self.header.names)}.",
            )
        return RawRow(number, content, csv_fields(dict(zip(self.header.names, cells, strict=True))))


def csv_fields(cells: dict[str, str]) -> dict[str, Any]:
    """A CSV row as the single-notice API's JSON: known columns as fields (an empty cell is
    no value), every other column a placeholder value (as text)."""
    fields: dict[str, Any] = {}
    personalisation: dict[str, Any] = {}
    for name, value in cells.items():
        if name not in CSV_FIELDS:
            personalisation[name] = value
        elif name == "important":
            word = value.strip().lower()
            fields[name] = word if word not in TRUE_WORDS | FALSE_WORDS else word in TRUE_WORDS
        elif value.strip():
            fields[name] = value.strip()
    fields["personalisation"] = personalisation
    return fields


def describe(error: ValidationError) -> str:
    """A validation error in one line: where and what, for each problem."""
    parts = []
    for problem in error.errors(include_url=False):
        where = ".".join(str(p) for p in problem["loc"]) or "row"
        parts.append(f"{where}: {problem['msg']}")
    return "; ".join(parts) + "."


def parse(raw: RawRow) -> BatchRow | tuple[int, str, str]:
    """The row as a notice to route, or a rejection (row, error, content)."""
    if raw.fields is None:
        return (raw.row, raw.error or "The row cannot be read.", raw.content)
    try:
        return BatchRow(raw.row, raw.content, NoticeIn.model_validate(raw.fields))
    except ValidationError as problem:
        return (raw.row, describe(problem), raw.content)


# --- running a job ------------------------------------------------------------------------


def _locked(job_id: uuid.UUID, database: Database) -> SelectOfScalar[NoticeJob]:
    """The job's row, locked on PostgreSQL until the transaction ends (SQLite serialises
    writers by itself)."""
    query = select(NoticeJob).where(NoticeJob.id == job_id)
    return query.with_for_update() if database.dialect == "postgresql" else query


async def claim_job(
    database: Database, *, job_id: uuid.UUID | None = None, claim_seconds: float = CLAIM_SECONDS
) -> NoticeJob | None:
    """Take a job to run: ``job_id``, or the oldest queued job, or a running one whose claim
    lapsed (its process died). None when there is none (or it is someone else's now)."""
    now = utcnow()
    async with database.session() as session:
        query = select(NoticeJob).where(
            col(NoticeJob.status).in_(("queued", "running")),
            sa.or_(col(NoticeJob.claimed_until).is_(None), col(NoticeJob.claimed_until) < now),
        )
        if job_id is not None:
            query = query.where(NoticeJob.id == job_id)
        query = query.order_by(col(NoticeJob.created_at)).limit(1)
        if database.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        job = (await session.exec(query)).first()
        if job is None:
            return None
        job.status = "running"
        job.started_at = job.started_at or now
        job.claimed_until = now + dt.timedelta(seconds=claim_seconds)
        job.updated_at = now
        session.add(job)
        await session.flush()
        await session.refresh(job)
        return job


Progress = Callable[[NoticeJob], None]


async def run_job(
    database: Database,
    job: NoticeJob,
    *,
    store: Path,
    catalog: Catalog,
    timezone: str,
    base_url: str,
    batch_rows: int = BATCH_ROWS,
    seconds: float | None = None,
    claim_seconds: float = CLAIM_SECONDS,
    progress: Progress | None = None,
) -> NoticeJob:
    """Route the claimed ``job`` from where it stands, batch by batch, until the file ends,
    it is cancelled, or ``seconds`` have passed (at least one batch is written; then the
    claim is released for the next round). Returns the job as it was left."""
    async with database.session() as session:
        agency = await session.get(Agency, job.agency_id)
        document = await session.get(Document, job.document_id)
    path = store / document.storage_key if document is not None else None
    if agency is None or path is None or not path.is_file():
        return await _finish(database, job.id, "failed", error="The job's file is missing.")
    context = JobContext(
        agency=agency, catalog=catalog, timezone=timezone, base_url=base_url, job_id=job.id
    )
    started = utcnow()
    with RowReader(path, job.format, offset=job.offset, next_row=job.next_row) as reader:  # type: ignore[arg-type]
        if database.dialect == "postgresql":
            return await _run_in_database(
                database, job, reader, context, batch_rows, seconds, claim_seconds, progress
            )
        written = job.offset  # where the rows written so far end
        # Three things overlap: the next rows are read and parsed in a thread; a batch is
        # decided (in a thread too) while the batch before it is written.
        ahead = asyncio.create_task(asyncio.to_thread(_read_batch, reader, batch_rows))
        pending: _Decided | None = None
        try:
            while True:
                batch = await ahead
                now = utcnow()
                gathered: Gathered | None = None
                if batch.rows:
                    ahead = asyncio.create_task(asyncio.to_thread(_read_batch, reader, batch_rows))
                    # Gathered before the pending batch is written: what that batch adds is
                    # not in the database yet, and is carried over in memory instead.
                    async with database.session() as reading:
                        gathered = await gather(reading, context, batch.notices, now=now)
                if pending is None:
                    plan = decide(context, gathered, now=now) if gathered else None
                else:
                    writing = asyncio.create_task(
                        _write_batch(
                            database,
                            job.id,
                            pending.batch,
                            written,
                            claim_seconds,
                            partial(write_plan, plan=pending.plan),
                        )
                    )
                    try:
                        plan = (
                            await asyncio.to_thread(
                                decide, context, gathered, now=now, carry=pending.plan.carried()
                            )
                            if gathered
                            else None
                        )
                    finally:
                        current, kept = await writing
                    if not kept:
                        return current  # cancelled, or taken over after our claim lapsed
                    written = pending.batch.offset
                    if progress:
                        progress(current)
                    if seconds is not None and (utcnow() - started).total_seconds() >= seconds:
                        return await _release(database, job.id)
                if plan is None:
                    return await _done(database, job.id, written, batch.offset, progress)
                pending = _Decided(batch, plan)
        finally:
            await _stop_reading(ahead)


async def _run_in_database(
    database: Database,
    job: NoticeJob,
    reader: RowReader,
    context: JobContext,
    batch_rows: int,
    seconds: float | None,
    claim_seconds: float,
    progress: Progress | None,
) -> NoticeJob:
    """``run_job`` on PostgreSQL. Each batch is decided by set-based SQL in a transaction
    of its own while the batch before it is still being written (two connections, so the
    database works on both at once), and written once that one has committed; meanwhile
    the next rows are read and parsed in a thread."""
    deadline = utcnow() + dt.timedelta(seconds=seconds) if seconds is not None else None
    written = job.offset  # where the rows of the last batch handed on end
    ahead = asyncio.create_task(asyncio.to_thread(_read_batch, reader, batch_rows))
    before: asyncio.Task[tuple[NoticeJob, bool]] | None = None
    current: asyncio.Task[tuple[NoticeJob, bool]] | None = None

    async def stopped(left: NoticeJob) -> NoticeJob:
        """A batch was not written: the job was cancelled or taken over, or time is up."""
        if deadline is not None and left.status == "running" and utcnow() >= deadline:
            return await _release(database, job.id)
        return left

    try:
        while True:
            batch = await ahead
            if not batch.rows:
                break
            ahead = asyncio.create_task(asyncio.to_thread(_read_batch, reader, batch_rows))
            current = asyncio.create_task(
                _batch_in_database(
                    database, job.id, context, batch, written, claim_seconds, before, deadline
                )
            )
            written = batch.offset
            if before is not None:
                # At most two batches in flight: this one deciding, the one before writing.
                left, kept = await before
                if not kept:
                    return await stopped(left)
                if progress:
                    progress(left)
            before, current = current, None
        if before is not None:
            left, kept = await before
            if not kept:
                return await stopped(left)
            if progress:
                progress(left)
        return await _done(database, job.id, written, batch.offset, progress)
    finally:
        for task in (current, before):
            if task is not None:
                with contextlib.suppress(BaseException):
                    await task  # it ends by itself once the batch before it has
        await _stop_reading(ahead)


async def _batch_in_database(
    database: Database,
    job_id: uuid.UUID,
    context: JobContext,
    batch: _Batch,
    expected_offset: int,
    claim_seconds: float,
    before: asyncio.Task[tuple[NoticeJob, bool]] | None,
    deadline: dt.datetime | None,
) -> tuple[NoticeJob, bool]:
    """Decide ``batch``, wait for the batch ``before`` it to be written, then write this
    one with the job's new position (see ``_write_batch``) — unless ``before`` was not
    written, or ``deadline`` has passed (the first batch of a run is always written)."""
    now = utcnow()
    async with database.session() as session:
        prepared = await prepare_batch(session, context, batch.notices)
        if before is not None:
            left, kept = await asyncio.shield(before)
            if not kept or (deadline is not None and utcnow() >= deadline):
                return left, False  # committing only empties the temporary tables
        return await _write_in(
            session,
            database,
            job_id,
            batch,
            expected_offset,
            claim_seconds,
            partial(
                route_prepared, context=context, rows=batch.notices, now=now, prepared=prepared
            ),
        )


async def _stop_reading(ahead: asyncio.Task[_Batch]) -> None:
    if not ahead.done():
        ahead.cancel()
    with contextlib.suppress(BaseException):
        await ahead  # the reader's file closes only after its thread let go of it


@dataclass(frozen=True)
class _Decided:
    """A batch read and decided, waiting to be written."""

    batch: _Batch
    plan: Plan


async def _write_batch(
    database: Database,
    job_id: uuid.UUID,
    batch: _Batch,
    expected_offset: int,
    claim_seconds: float,
    write: Callable[[AsyncSession], Awaitable[BatchOutcome]],
) -> tuple[NoticeJob, bool]:
    """Write a batch (``write``) with the job's new position and counts, in one transaction;
    (the job, False) without writing when it was cancelled or another process took it."""
    async with database.session() as session:
        return await _write_in(
            session, database, job_id, batch, expected_offset, claim_seconds, write
        )


async def _write_in(
    session: AsyncSession,
    database: Database,
    job_id: uuid.UUID,
    batch: _Batch,
    expected_offset: int,
    claim_seconds: float,
    write: Callable[[AsyncSession], Awaitable[BatchOutcome]],
) -> tuple[NoticeJob, bool]:
    """``_write_batch`` in the caller's ``session``."""
    current = (await session.exec(_locked(job_id, database))).one()
    if current.status != "running" or current.offset != expected_offset:
        return current, False
    outcome = await write(session)
    rejections = batch.rejections + outcome.rejections
    if rejections:
        await _reject(session, job_id, rejections)
    now = utcnow()
    current.offset = batch.offset
    current.next_row = batch.next_row
    current.accepted += outcome.accepted
    current.not_sent += outcome.not_sent
    current.duplicates += outcome.duplicates
    current.rejected += len(rejections)
    current.claimed_until = now + dt.timedelta(seconds=claim_seconds)
    current.updated_at = now
    session.add(current)
    await session.flush()
    await session.refresh(current)
    return current, True


async def _done(
    database: Database,
    job_id: uuid.UUID,
    expected_offset: int,
    end: int,
    progress: Progress | None,
) -> NoticeJob:
    """The file has ended and every batch is written: the job is done (unless it was
    cancelled or taken over meanwhile)."""
    async with database.session() as session:
        current = (await session.exec(_locked(job_id, database))).one()
        if current.status != "running" or current.offset != expected_offset:
            return current
        now = utcnow()
        current.status, current.finished_at = "done", now
        current.claimed_until, current.updated_at = None, now
        current.offset = end
        session.add(current)
        await session.flush()
        await session.refresh(current)
    if progress:
        progress(current)
    return current


@dataclass(frozen=True)
class _Batch:
    """Rows read from the file: those to route, those refused, and where the file stands
    after them (``rows`` empty: the file has ended)."""

    rows: list[RawRow]
    notices: list[BatchRow]
    rejections: list[tuple[int, str, str]]
    offset: int
    next_row: int


def _read_batch(reader: RowReader, limit: int) -> _Batch:
    rows = reader.read(limit)
    parsed = [parse(raw) for raw in rows]
    return _Batch(
        rows=rows,
        notices=[p for p in parsed if isinstance(p, BatchRow)],
        rejections=[p for p in parsed if not isinstance(p, BatchRow)],
        offset=reader.offset,
        next_row=reader.next_row,
    )


async def _reject(
    session: AsyncSession, job_id: uuid.UUID, rejections: list[tuple[int, str, str]]
) -> None:
    """Keep the refused rows for the job's report."""
    await (await session.connection()).execute(
        sa.insert(NoticeJobRejection.__table__),  # type: ignore[attr-defined]
        [
            {"job_id": job_id, "row": row, "error": error[:1000], "content": content[:2000]}
            for row, error, content in rejections
        ],
    )


async def _release(database: Database, job_id: uuid.UUID) -> NoticeJob:
    async with database.session() as session:
        job = (await session.exec(_locked(job_id, database))).one()
        job.claimed_until = None
        session.add(job)
        await session.flush()
        await session.refresh(job)
        return job


async def _finish(
    database: Database, job_id: uuid.UUID, status: str, *, error: str | None = None
) -> NoticeJob:
    async with database.session() as session:
        job = (await session.exec(_locked(job_id, database))).one()
        now = utcnow()
        job.status, job.error, job.finished_at = status, error, now
        job.claimed_until, job.updated_at = None, now
        session.add(job)
        await session.flush()
        await session.refresh(job)
        return job


async def process_notice_jobs(
    database: Database,
    *,
    store: Path,
    catalog: Catalog,
    timezone: str,
    base_url: str,
    seconds: float = 2.0,
) -> int:
    """For the worker: run the next job for about ``seconds``; the rows read."""
    job = await claim_job(database)
    if job is None:
        return 0
    before = job.next_row
    try:
        left = await run_job(
            database,
            job,
            store=store,
            catalog=catalog,
            timezone=timezone,
            base_url=base_url,
            seconds=seconds,
        )
    except Exception:
        log.exception("notice job %s: a batch failed; it is retried when its claim lapses", job.id)
        return 0
    return left.next_row - before


# --- reading and cancelling ---------------------------------------------------------------


async def job_of_agency(session: AsyncSession, *, agency_id: str, job_id: uuid.UUID) -> NoticeJob:
    job = await session.get(NoticeJob, job_id)
    if job is None or job.agency_id != agency_id:
        raise NotFound("No such notice job.")
    return job


async def jobs_of_agency(session: AsyncSession, agency_id: str, limit: int = 50) -> list[NoticeJob]:
    query = (
        select(NoticeJob)
        .where(NoticeJob.agency_id == agency_id)
        .order_by(col(NoticeJob.created_at).desc())
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def cancel_job(session: AsyncSession, job: NoticeJob) -> NoticeJob:
    """Stop the job after the batch it is writing; 409 when it already finished."""
    locked = (
        await session.exec(select(NoticeJob).where(NoticeJob.id == job.id).with_for_update())
    ).one()
    await session.refresh(locked)
    if locked.status in FINISHED:
        raise Conflict(f"The job is already {locked.status}.")
    now = utcnow()
    locked.status, locked.finished_at, locked.claimed_until = "cancelled", now, None
    locked.updated_at = now
    session.add(locked)
    await session.flush()
    return locked


async def rejections_of(
    session: AsyncSession, job_id: uuid.UUID, *, after: int = 0, limit: int = 1000
) -> list[NoticeJobRejection]:
    query = (
        select(NoticeJobRejection)
        .where(NoticeJobRejection.job_id == job_id, NoticeJobRejection.row > after)
        .order_by(col(NoticeJobRejection.row))
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def rejection_report(database: Database, job_id: uuid.UUID) -> AsyncIterator[str]:
    """The rejected rows as CSV (row, error, content), read a page at a time."""
    out = _CsvLine()
    yield out.line(["row", "error", "content"])
    after = 0
    while True:
        async with database.session() as session:
            page = await rejections_of(session, job_id, after=after)
        if not page:
            return
        for rejection in page:
            yield out.line([str(rejection.row), rejection.error, rejection.content])
        after = page[-1].row


class _CsvLine:
    def __init__(self) -> None:
        self._buffer: list[str] = []
        self._writer = csv.writer(self, lineterminator="\r\n")

    def write(self, text: str) -> int:
        self._buffer.append(text)
        return len(text)

    def line(self, cells: list[str]) -> str:
        self._writer.writerow(cells)
        text = "".join(self._buffer)
        self._buffer.clear()
        return text
