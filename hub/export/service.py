"""A citizen's copy of everything the hub holds about them, as one zip archive.

The archive is written into a spooled temporary file — in memory up to a few megabytes,
on disk beyond — one case at a time, so a party with thousands of messages costs the
process one case's messages at a time, not the whole archive twice. What is in it, and
what is left out and why, is in docs/citizen-data.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import tempfile
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from jinja2 import Environment
from pydantic import BaseModel
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.access.chain import append_entry, pseudonym
from hub.access.service import Viewer, entries_about
from hub.cases.schemas import EventOut
from hub.db import utcnow
from hub.documents.service import documents_of_case, read_file
from hub.events.service import events_after
from hub.messages.thread import read_thread
from hub.models import (
    AccessLogEntry,
    Agency,
    Case,
    Consent,
    ConsentTopic,
    Conversation,
    DigitalAddress,
    Document,
    LoginSession,
    Notice,
    Party,
    ProcessingActivity,
)
from hub.models.party import PreferenceChange
from hub.observability.logging import request_id_var
from hub.parties.mandates import MandateView, mandates_granted, mandates_received
from hub.web.i18n import Language, language
from hub.web.pages import ENVIRONMENTS

logger = logging.getLogger(__name__)

# Kept in memory up to this size, then spilled to a temporary file.
SPOOL_BYTES = 8 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
# Rows read from the database per round trip for the long lists (notices, access log).
BATCH = 500
# What the access log calls a download of the archive.
EXPORT_ACTION = "export"
EXPORT_DATA = "everything"


@dataclass
class ArchiveFile:
    path: str
    description: str
    size: int = 0


@dataclass
class Archive:
    """The finished archive: a file positioned at its start, its size and a download name."""

    file: IO[bytes]
    size: int
    filename: str
    files: list[ArchiveFile] = field(default_factory=list)

    def chunks(self) -> Iterator[bytes]:
        """The archive's bytes in chunks; the file is closed (and removed) at the end."""
        try:
            while chunk := self.file.read(CHUNK_BYTES):
                yield chunk
        finally:
            self.file.close()


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot put {type(value).__name__} in the archive")


def _dumps(value: Any, *, indent: int | None = None) -> str:
    # Without an indent the standard library's C encoder does the work: the long files
    # (messages, timelines) are written with none, one item a line.
    return json.dumps(value, default=_json_default, ensure_ascii=False, indent=indent)


_UNSAFE = re.compile(r"[^\w.\- ]+")


def archive_name(name: str) -> str:
    """A file name that stays one name inside the archive: no folders, no dots in front."""
    cleaned = _UNSAFE.sub("_", name).strip(" ._")[:120]
    return cleaned or "document"


class ArchiveWriter:
    """Writes named files into the zip and keeps the list of what each one is."""

    def __init__(self, file: IO[bytes]) -> None:
        self.zip = zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6)
        self.files: list[ArchiveFile] = []

    def text(self, path: str, content: str, description: str) -> None:
        data = content.encode()
        self.zip.writestr(path, data)
        self.files.append(ArchiveFile(path, description, len(data)))

    def json(self, path: str, value: Any, description: str) -> None:
        self.text(path, _dumps(value, indent=2) + "\n", description)

    def json_items(self, path: str, items: list[Any], description: str) -> None:
        """A JSON array one item a line: readable, and quick to write for thousands."""
        lines = ",\n".join(_dumps(item) for item in items)
        self.text(path, f"[\n{lines}\n]\n" if items else "[]\n", description)

    async def json_list(
        self, path: str, rows: AsyncIterator[dict[str, Any]], description: str
    ) -> int:
        """A JSON array written row by row as ``rows`` are read: never all in memory."""
        count = 0
        with self.zip.open(path, "w") as out:
            out.write(b"[")
            async for row in rows:
                out.write((",\n" if count else "\n").encode() + _dumps(row).encode())
                count += 1
            out.write(b"\n]\n" if count else b"]\n")
        self.files.append(ArchiveFile(path, description, self.zip.getinfo(path).file_size))
        return count

    async def copy(self, path: str, source: Path, document: Document, description: str) -> bool:
        """A stored document, verified against its checksum; False when it is damaged."""

        def write() -> None:
            content = read_file(source, document)
            # PDFs and photos are compressed already: stored as they are.
            self.zip.writestr(path, content, compress_type=zipfile.ZIP_STORED)

        try:
            await asyncio.to_thread(write)
        except (OSError, RuntimeError):
            logger.error("export: document %s missing or not matching its checksum", document.id)
            return False
        self.files.append(ArchiveFile(path, description, document.size))
        return True

    def close(self) -> None:
        self.zip.close()


# --- what the hub holds, as the archive shows it --------------------------------------------


def party_row(party: Party, addresses: list[DigitalAddress]) -> dict[str, Any]:
    return {
        "id": party.id,
        "kind": party.kind,
        "name": party.name,
        "bsn": party.bsn,
        "kvk_number": party.kvk_number,
        "date_of_birth": party.date_of_birth,
        "postal_address": party.postal_address,
        "preferences": {
            "channel": party.preferred_channel,
            "language": party.preferred_language,
            "needs": list(party.needs),
        },
        "addresses": [
            {
                "kind": a.kind,
                "value": a.value,
                "verified_at": a.verified_at,
                "opted_out_at": a.opted_out_at,
                "added_at": a.created_at,
            }
            for a in addresses
        ],
        "registered_at": party.created_at,
    }


def preference_change_row(change: PreferenceChange) -> dict[str, Any]:
    return {
        "preference": change.preference,
        "before": change.before,
        "after": change.after,
        "changed_by_kind": change.changed_by_kind,
        "changed_by_name": change.changed_by_name,
        "source": change.source,
        "changed_at": change.changed_at,
    }


def login_row(login: LoginSession) -> dict[str, Any]:
    return {
        "identified_by": login.identified_by,
        "started_at": login.created_at,
        "expires_at": login.expires_at,
        "ended_at": login.revoked_at,
    }


def mandate_row(view: MandateView, *, given: bool) -> dict[str, Any]:
    mandate = view.mandate
    other = {"id": view.other.id, "name": view.other.name}
    return {
        "id": mandate.id,
        "representative" if given else "represented": other,
        "journeys": None if mandate.all_journeys else list(mandate.journeys),
        "valid_from": mandate.valid_from,
        "valid_until": mandate.valid_until,
        "revoked_at": mandate.revoked_at,
        "state": view.state,
    }


def case_row(case: Case, agency_name: str) -> dict[str, Any]:
    return {
        "id": case.id,
        "reference": case.reference,
        "journey": case.journey_id,
        "title": case.title,
        "agency": case.agency_id,
        "agency_name": agency_name,
        "stage": case.stage,
        "status": case.status,
        "result": case.result,
        "expected_completion": case.expected_completion,
        "opened_channel": case.opened_channel,
        "opened_at": case.created_at,
        "updated_at": case.updated_at,
        "closed_at": case.closed_at,
    }


def chat_row(conversation: Conversation) -> dict[str, Any]:
    return {
        "agency": conversation.agency_id,
        "status": conversation.status,
        "reply_channel": conversation.reply_channel,
        "waiting_since": conversation.waiting_since,
        "picked_up_at": conversation.picked_up_at,
        "closed_at": conversation.closed_at,
    }


def notice_row(notice: Notice) -> dict[str, Any]:
    return {
        "id": notice.id,
        "agency": notice.agency_id,
        "subject": notice.subject,
        "body": notice.body,
        "channel": notice.channel,
        "status": notice.status,
        "not_sent_because": notice.reason,
        "important": notice.important,
        "journey": notice.journey_id,
        "case_id": notice.case_id,
        "sent_at": notice.created_at,
        "read_at": notice.read_at,
    }


def consent_row(consent: Consent, topic: ConsentTopic) -> dict[str, Any]:
    return {
        "agency": topic.agency_id,
        "topic": topic.code,
        "title": topic.title,
        "granted": consent.granted,
        "recorded_by": consent.recorded_by_kind,
        "source": consent.source,
        "recorded_at": consent.recorded_at,
    }


def access_row(
    entry: AccessLogEntry,
    activity: ProcessingActivity | None,
    agency: Agency | None,
    case: Case | None,
) -> dict[str, Any]:
    return {
        "at": entry.created_at,
        "who": entry.actor_name,
        "actor_kind": entry.actor_kind,
        "agency": agency.name if agency else entry.agency_id,
        "action": entry.action,
        "data": entry.data,
        "case_reference": case.reference if case else None,
        "purpose": activity.purpose if activity else None,
        "legal_ground": activity.legal_ground if activity else None,
        "request_id": entry.request_id,
    }


# --- reading in batches -----------------------------------------------------------------------


async def _notices(session: AsyncSession, party_id: uuid.UUID) -> AsyncIterator[dict[str, Any]]:
    query = (
        select(Notice)
        .where(Notice.party_id == party_id)
        .order_by(col(Notice.created_at), col(Notice.id))
        .execution_options(yield_per=BATCH)
    )
    async for notice in await session.stream_scalars(query):
        yield notice_row(notice)


async def _consents(session: AsyncSession, party_id: uuid.UUID) -> AsyncIterator[dict[str, Any]]:
    query = (
        select(Consent, ConsentTopic)
        .join(ConsentTopic, col(ConsentTopic.id) == col(Consent.topic_id))
        .where(Consent.party_id == party_id)
        .order_by(col(Consent.recorded_at), col(Consent.id))
        .execution_options(yield_per=BATCH)
    )
    async for consent, topic in await session.stream(query):
        yield consent_row(consent, topic)


async def _access_log(session: AsyncSession, party_id: uuid.UUID) -> AsyncIterator[dict[str, Any]]:
    query = (
        entries_about(party_id)
        .order_by(col(AccessLogEntry.created_at), col(AccessLogEntry.id))
        .execution_options(yield_per=BATCH)
    )
    async for entry, activity, agency, case in await session.stream(query):
        yield access_row(entry, activity, agency, case)


# --- the archive ------------------------------------------------------------------------------


async def record_export(session: AsyncSession, viewer: Viewer, party: Party) -> AccessLogEntry:
    """The access log line for the download itself: the citizen took a copy of everything.

    Unlike a citizen's other reads of their own data it is logged: the log then shows when
    a copy of everything left the hub. Chained like every entry; when it cannot be written
    this raises and no archive is handed out.
    """
    entry = AccessLogEntry(
        party_id=party.id,
        subject=pseudonym(party.id),
        actor_kind="citizen",
        actor_id=viewer.id,
        actor_name=viewer.name,
        action=EXPORT_ACTION,
        data=EXPORT_DATA,
        request_id=viewer.request_id or request_id_var.get(),
    )
    return await append_entry(session, entry)


async def export_party(
    session: AsyncSession, viewer: Viewer, *, store: Path, timezone: str
) -> Archive:
    """The archive of everything the hub holds about the viewer's own party.

    Only a citizen's own party: the viewer's ``party_id``, never a party they represent.
    The download is written to the party's access log in the caller's transaction, so the
    archive is only handed out once that line is stored. It is written last, when the
    archive is made: appending takes the log's chain lock until the transaction ends, and
    every other reader's log line waits for it. So this download's own line is not in the
    archive it made; the next one's holds it.
    """
    if viewer.kind != "citizen" or viewer.party_id is None:
        raise ValueError("only a citizen exports their own data")
    party = await session.get(Party, viewer.party_id)
    if party is None:
        raise ValueError("the viewer's party is gone")
    made_at = utcnow()
    look = Look(language(party.preferred_language), timezone)
    file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
    writer = ArchiveWriter(file)
    try:
        summary = await _write_contents(session, writer, party, store=store, look=look)
        readme = look.pages.get_template("pages/export_summary.html").render(
            lang=look.lang,
            timezone=timezone,
            party=party,
            made_at=made_at,
            **summary,
        )
        writer.text(
            "README.html",
            readme,
            "Start here: for whom and when this archive was made, what each file holds, "
            "and your data in a readable form.",
        )
        manifest = {
            "made_for": {"id": party.id, "name": party.name},
            "made_at": made_at,
            "made_by": "Interaction Hub",
            "files": [
                {"path": f.path, "description": f.description, "bytes": f.size}
                for f in writer.files
            ],
            "counts": summary["counts"],
            "left_out": LEFT_OUT,
        }
        writer.json("manifest.json", manifest, "This list of files, for programs.")
        writer.close()
        await record_export(session, viewer, party)
    except BaseException:
        file.close()
        raise
    size = file.tell()
    file.seek(0)
    return Archive(
        file=file,
        size=size,
        filename=f"interaction-hub-my-data-{made_at:%Y-%m-%d}.zip",
        files=writer.files,
    )


LEFT_OUT = [
    "Internal notes of staff on your cases, and the files that came with them.",
    "Mail and texts that matched none of your cases and still wait in the review queue: "
    "they are added to a case, and so to this archive, once staff have put them there.",
    "Cases of people you represent: they are theirs, not yours.",
    "Secrets: login codes and session tokens are kept only as hashes.",
]


@dataclass(frozen=True)
class Look:
    """How the archive's pages read: the party's language and the hub's time zone."""

    lang: Language
    timezone: str

    @property
    def pages(self) -> Environment:
        return ENVIRONMENTS[self.lang]


@dataclass
class CaseSummary:
    case: dict[str, Any]
    folder: str
    messages: int
    documents: int
    missing: list[str]


async def _write_contents(
    session: AsyncSession, writer: ArchiveWriter, party: Party, *, store: Path, look: Look
) -> dict[str, Any]:
    """Every file but the README and manifest; returns what the README shows."""
    addresses = list(
        (
            await session.exec(
                select(DigitalAddress)
                .where(DigitalAddress.party_id == party.id)
                .order_by(col(DigitalAddress.kind), col(DigitalAddress.created_at))
            )
        ).all()
    )
    history = list(
        (
            await session.exec(
                select(PreferenceChange)
                .where(PreferenceChange.party_id == party.id)
                .order_by(col(PreferenceChange.changed_at), col(PreferenceChange.id))
            )
        ).all()
    )
    logins = list(
        (
            await session.exec(
                select(LoginSession)
                .where(LoginSession.subject_kind == "citizen", LoginSession.subject_id == party.id)
                .order_by(col(LoginSession.created_at))
            )
        ).all()
    )
    you = party_row(party, addresses)
    writer.json(
        "you/details.json",
        {
            **you,
            "preference_changes": [preference_change_row(c) for c in history],
            "logins": [login_row(s) for s in logins],
        },
        "Your details: name, numbers, postal address, email addresses and phone numbers, "
        "preferences and every change of them, and your logins.",
    )
    granted = [mandate_row(v, given=True) for v in await mandates_granted(session, party.id)]
    held = [mandate_row(v, given=False) for v in await mandates_received(session, party.id)]
    writer.json(
        "you/mandates.json",
        {"given": granted, "held": held},
        "Mandates: who may act for you (given), and for whom you may act (held).",
    )

    agencies = {a.id: a.name for a in (await session.exec(select(Agency))).all()}
    cases = list(
        (
            await session.exec(
                select(Case).where(Case.party_id == party.id).order_by(col(Case.created_at))
            )
        ).all()
    )
    summaries = [
        await _write_case(session, writer, case, agencies=agencies, store=store, look=look)
        for case in cases
    ]
    letters = await _write_letters(session, writer, party, store=store)

    notices = await writer.json_list(
        "notices.json",
        _notices(session, party.id),
        "Notices agencies sent you, and those they could not send (with why).",
    )
    consents = await writer.json_list(
        "consents.json",
        _consents(session, party.id),
        "Every answer you (or someone for you) gave to an agency's question to inform you, "
        "oldest first: the last one per topic is in force.",
    )
    accesses = await writer.json_list(
        "access-log.json",
        _access_log(session, party.id),
        "The access log: every time staff, an agency's system or a representative read or "
        "changed your data, and your earlier downloads of this archive.",
    )
    return {
        "you": you,
        "granted": granted,
        "held": held,
        "cases": summaries,
        "letters": letters,
        "counts": {
            "cases": len(cases),
            "messages": sum(s.messages for s in summaries),
            "documents": sum(s.documents for s in summaries) + len(letters),
            "notices": notices,
            "consents": consents,
            "access_log": accesses,
        },
    }


async def _write_case(
    session: AsyncSession,
    writer: ArchiveWriter,
    case: Case,
    *,
    agencies: dict[str, str],
    store: Path,
    look: Look,
) -> CaseSummary:
    folder = f"cases/{archive_name(case.reference)}"
    row = case_row(case, agencies.get(case.agency_id, case.agency_id))
    events = await events_after(session, case.id, 0, audiences=("citizen",), limit=1_000_000)
    chats = (
        await session.exec(
            select(Conversation)
            .where(Conversation.case_id == case.id)
            .order_by(col(Conversation.created_at))
        )
    ).all()
    documents = await documents_of_case(session, case.id, staff_view=False)
    files: list[dict[str, Any]] = []
    missing: list[str] = []
    for document in documents:
        path = f"{folder}/documents/{document.id}-{archive_name(document.filename)}"
        copied = await writer.copy(
            path, store, document, f"A document on case {case.reference}: {document.filename}"
        )
        if not copied:
            missing.append(document.filename)
        files.append(
            {
                "filename": document.filename,
                "content_type": document.content_type,
                "bytes": document.size,
                "sha256": document.sha256,
                "source": document.source,
                "added_at": document.created_at,
                "in_archive": path if copied else None,
            }
        )
    writer.json(
        f"{folder}/case.json",
        {**row, "chats": [chat_row(c) for c in chats], "documents": files},
        f"Case {case.reference}: where it stands, its chats and documents.",
    )
    writer.json_items(
        f"{folder}/timeline.json",
        [EventOut.of(e) for e in events],
        f"Case {case.reference}: everything that happened on it, in order.",
    )
    thread = await read_thread(session, case, staff_view=False)
    writer.json_items(
        f"{folder}/messages.json",
        thread,
        f"Case {case.reference}: every message you sent and were sent, on any channel.",
    )
    page = look.pages.get_template("pages/export_case.html").render(
        lang=look.lang,
        timezone=look.timezone,
        case=row,
        # The messages follow in full: the list of what happened leaves them out.
        events=[e for e in events if e.kind != "message"],
        thread=thread,
        documents=files,
    )
    writer.text(
        f"{folder}/case.html",
        page,
        f"Case {case.reference} to read: what happened on it, and every message.",
    )
    return CaseSummary(
        case=row, folder=folder, messages=len(thread), documents=len(files), missing=missing
    )


async def _write_letters(
    session: AsyncSession, writer: ArchiveWriter, party: Party, *, store: Path
) -> list[dict[str, Any]]:
    """Letters the hub printed for the party outside a case (a notice by post, say)."""
    letters = (
        await session.exec(
            select(Document)
            .where(
                Document.party_id == party.id,
                col(Document.case_id).is_(None),
                Document.source == "letter",
            )
            .order_by(col(Document.created_at))
        )
    ).all()
    rows = []
    for document in letters:
        path = f"letters/{document.id}-{archive_name(document.filename)}"
        copied = await writer.copy(path, store, document, "A letter we sent you by post.")
        rows.append(
            {"filename": document.filename, "sent_at": document.created_at, "in_archive": path}
            | ({} if copied else {"in_archive": None})
        )
    return rows
