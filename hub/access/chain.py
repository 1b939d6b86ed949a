"""The access log's hash chain: appending an entry after the last one, and checking the chain.

Each entry's ``entry_hash`` is the SHA-256 of a canonical encoding of its fields, among them
``seq`` and ``prev_hash`` (the hash of entry ``seq - 1``): an entry changed, removed or put in
between after the fact no longer matches. The citizen is in the chain only as ``subject``, an
HMAC of their party id, so that retention can drop ``party_id`` without breaking it.

Appends are serialised: on PostgreSQL by a transaction-scoped advisory lock, held from the
append until the request's transaction ends; on SQLite every writer already holds the
database's write lock (``BEGIN IMMEDIATE``). The unique ``seq`` refuses a fork should two
writers ever get past that.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy.exc import DBAPIError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.config import Settings, get_settings
from hub.db import Database
from hub.errors import HubError
from hub.models import AccessLogEntry

GENESIS = "0" * 64
# Any fixed number: the hub takes no other advisory lock under it.
CHAIN_LOCK = 0x6875622D61636C67
SUBJECT_CONTEXT = b"interaction-hub access log subject"

_subject_key: bytes | None = None


class AccessLogUnavailable(HubError):
    """The access log could not be written: the read it was for is not answered."""

    status = 503
    title = "Access log unavailable"
    type_suffix = "access-log-unavailable"


def subject_key(settings: Settings) -> bytes:
    """The key of the subject pseudonyms: ``HUB_ACCESS_LOG_KEY``, else one derived from
    ``HUB_SECRET_KEY``."""
    if settings.access_log_key is not None:
        return settings.access_log_key.get_secret_value().encode()
    secret = settings.secret_key.get_secret_value().encode()
    return hmac.new(secret, SUBJECT_CONTEXT, hashlib.sha256).digest()


def use_settings(settings: Settings) -> None:
    """Pseudonymise subjects with this hub's key (the app calls it at start-up)."""
    global _subject_key
    _subject_key = subject_key(settings)


def pseudonym(party_id: uuid.UUID) -> str:
    """The party's subject in the access log: HMAC-SHA256 of its id, in hex."""
    key = _subject_key if _subject_key is not None else subject_key(get_settings())
    return hmac.new(key, party_id.bytes, hashlib.sha256).hexdigest()


def canonical(entry: AccessLogEntry) -> bytes:
    """The bytes an entry's hash is taken over: every field but ``party_id`` and the hash."""
    fields = {
        "id": entry.id.hex,
        "seq": entry.seq,
        "prev_hash": entry.prev_hash,
        "subject": entry.subject,
        "actor_kind": entry.actor_kind,
        "actor_id": entry.actor_id,
        "actor_name": entry.actor_name,
        "agency_id": entry.agency_id,
        "processing_activity_id": entry.processing_activity_id,
        "action": entry.action,
        "data": entry.data,
        "case_id": entry.case_id.hex if entry.case_id else None,
        "request_id": entry.request_id,
        "created_at": entry.created_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def entry_hash(entry: AccessLogEntry) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


async def append_entry(session: AsyncSession, entry: AccessLogEntry) -> AccessLogEntry:
    """Chain ``entry`` after the last entry and write it now, in the session's transaction.

    Raises :class:`AccessLogUnavailable` when it cannot be written; the caller's transaction
    is then unusable and must end without answering the read.
    """
    try:
        connection = await session.connection()
        if connection.dialect.name == "postgresql":
            await session.exec(select(func.pg_advisory_xact_lock(CHAIN_LOCK)))
        head = (
            await session.exec(
                select(AccessLogEntry.seq, AccessLogEntry.entry_hash)
                .order_by(col(AccessLogEntry.seq).desc())
                .limit(1)
            )
        ).first()
        entry.seq = head[0] + 1 if head else 1
        entry.prev_hash = head[1] if head else GENESIS
        entry.entry_hash = entry_hash(entry)
        session.add(entry)
        await session.flush()
    except DBAPIError as error:
        raise AccessLogUnavailable(
            "The access log could not be written, so this read is not answered. Try again later."
        ) from error
    return entry


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    entry_id: uuid.UUID
    reason: str


@dataclass(frozen=True)
class ChainReport:
    checked: int
    head_hash: str
    broken: ChainBreak | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None


Progress = Callable[[int, int], None]


async def verify_chain(
    database: Database, *, batch: int = 5000, progress: Progress | None = None
) -> ChainReport:
    """Walk the chain from entry 1: every ``seq`` present, every ``prev_hash`` the hash of
    the entry before, every hash that of the entry's fields. Stops at the first break.

    ``progress(checked, total)`` is called after each batch. Limits: an entry removed from
    the end leaves a shorter valid chain; compare ``head_hash`` with one noted earlier.
    """
    async with database.sessions() as session:
        total = (await session.exec(select(func.count()).select_from(AccessLogEntry))).one()
    checked, expected_seq, previous = 0, 1, GENESIS
    while True:
        async with database.sessions() as session:
            entries = (
                await session.exec(
                    select(AccessLogEntry)
                    .where(AccessLogEntry.seq >= expected_seq)
                    .order_by(col(AccessLogEntry.seq))
                    .limit(batch)
                )
            ).all()
        for entry in entries:
            problem = _problem(entry, expected_seq, previous)
            if problem is not None:
                return ChainReport(checked, previous, ChainBreak(entry.seq, entry.id, problem))
            checked, expected_seq, previous = checked + 1, entry.seq + 1, entry.entry_hash
        if progress is not None and entries:
            progress(checked, total)
        if len(entries) < batch:
            return ChainReport(checked, previous)


def _problem(entry: AccessLogEntry, expected_seq: int, previous: str) -> str | None:
    if entry.seq != expected_seq:
        missing = (
            f"entry {expected_seq} is missing"
            if entry.seq == expected_seq + 1
            else f"entries {expected_seq} to {entry.seq - 1} are missing"
        )
        return f"{missing}: the log jumps to {entry.seq}"
    if entry.prev_hash != previous:
        return "it does not follow the entry before it (prev_hash differs)"
    if entry_hash(entry) != entry.entry_hash:
        return "its fields were changed after it was written (its hash does not match)"
    return None
