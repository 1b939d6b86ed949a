"""The document store: files a citizen uploads, a mail brings, a desk scans or the hub prints.

Files live outside the database under ``HUB_DOCUMENTS_DIR``, named by their SHA-256 (the
same file stored twice takes the space once); the ``document`` row holds the checksum, the
type found from the content — never the type the sender claims — and what it belongs to.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import uuid
from pathlib import Path

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.errors import HubError, InvalidInput
from hub.events.fanout import Broker
from hub.events.service import Actor, append_event
from hub.models import Document, Message

logger = logging.getLogger(__name__)

# What the hub accepts, recognised by the first bytes of the file.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)
EXTENSIONS = {
    "application/pdf": ".pdf",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/tiff": ".tif",
}


class DocumentRefused(InvalidInput):
    """A file of a type the hub does not take, empty, or too large."""


class DocumentTooLarge(DocumentRefused):
    """An upload larger than the hub takes, refused before more of it is read."""

    status = 413
    title = "Content too large"
    type_suffix = "content-too-large"


class DocumentDamaged(HubError):
    """A stored file that is missing or no longer matches its checksum: it is not handed out."""

    status = 500
    title = "Stored document damaged"
    type_suffix = "document-damaged"


def sniff(content: bytes) -> str | None:
    """The content type the file's first bytes show, if it is one the hub accepts."""
    for signature, content_type in SIGNATURES:
        if content.startswith(signature):
            return content_type
    return None


def check_content(content: bytes, *, max_bytes: int) -> str:
    """The file's content type; raises DocumentRefused with a reason a person understands."""
    if not content:
        raise DocumentRefused("The file is empty.")
    if len(content) > max_bytes:
        raise DocumentRefused(
            f"The file is {len(content):,} bytes; the most we take is {max_bytes:,} bytes."
        )
    content_type = sniff(content)
    if content_type is None:
        raise DocumentRefused("We take PDF files and photos or scans (PNG, JPEG, TIFF) only.")
    return content_type


def safe_filename(name: str | None, content_type: str) -> str:
    """A display name without path parts or control characters, with a fitting extension."""
    base = Path((name or "").replace("\\", "/")).name
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*').strip(". ")
    stem = Path(base).stem[:200] or "document"
    return stem + EXTENSIONS[content_type]


def write_file(store: Path, content: bytes) -> tuple[str, str]:
    """Write ``content`` into the store by its checksum; returns (sha256, storage key)."""
    digest = hashlib.sha256(content).hexdigest()
    key = f"{digest[:2]}/{digest}"
    target = store / key
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a crash never leaves half a file under the checksum's name.
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as partial:
            partial.write(content)
            partial.flush()
            os.fsync(partial.fileno())
        Path(partial.name).replace(target)
    return digest, key


def read_file(store: Path, document: Document) -> bytes:
    """The stored bytes, checked against the checksum recorded when they were stored."""
    content = (store / document.storage_key).read_bytes()
    if hashlib.sha256(content).hexdigest() != document.sha256:
        raise RuntimeError(f"document {document.id} does not match its checksum")
    return content


async def store_document(
    session: AsyncSession,
    *,
    store: Path,
    content: bytes,
    filename: str | None,
    source: str,
    uploaded_by_kind: str,
    uploaded_by_id: str | None = None,
    max_bytes: int,
    case_id: uuid.UUID | None = None,
    party_id: uuid.UUID | None = None,
    message_id: uuid.UUID | None = None,
    review_item_id: uuid.UUID | None = None,
    content_type: str | None = None,
) -> Document:
    """Check and store a file and record it. ``content_type`` skips the check for files the
    hub made itself (a letter's PDF, a raw mail kept for review)."""
    if content_type is None:
        content_type = check_content(content, max_bytes=max_bytes)
        name = safe_filename(filename, content_type)
    else:
        name = Path(filename or "document").name[:255]
    digest, key = write_file(store, content)
    document = Document(
        case_id=case_id,
        party_id=party_id,
        message_id=message_id,
        review_item_id=review_item_id,
        filename=name,
        content_type=content_type,
        size=len(content),
        sha256=digest,
        storage_key=key,
        source=source,
        uploaded_by_kind=uploaded_by_kind,
        uploaded_by_id=uploaded_by_id,
    )
    session.add(document)
    await session.flush()
    return document


async def announce_document(
    session: AsyncSession,
    *,
    case_id: uuid.UUID,
    document: Document,
    actor: Actor,
    broker: Broker | None = None,
) -> None:
    """The case's ``document_added`` event for a file now on it: an upload, a desk scan, or
    a file that came with a mail."""
    await append_event(
        session,
        case_id=case_id,
        kind="document_added",
        actor=actor,
        payload={
            "document_id": str(document.id),
            "filename": document.filename,
            "content_type": document.content_type,
            "size": document.size,
            "source": document.source,
        },
        broker=broker,
    )


def stored_content(store: Path, document: Document, *, damaged: HubError | None = None) -> bytes:
    """The stored bytes, verified against their checksum, so nobody receives a file other
    than the one that was stored. When the file is gone or changed the error is logged and
    ``damaged`` raised: by default DocumentDamaged; a caller may say what it means for it."""
    try:
        return read_file(store, document)
    except (OSError, RuntimeError):
        logger.error("document %s: stored file missing or not matching its checksum", document.id)
        raise damaged or DocumentDamaged(
            "This document cannot be handed out: the stored file is missing or does not "
            "match its checksum. The administrator has to restore it."
        ) from None


async def documents_of_case(
    session: AsyncSession, case_id: uuid.UUID, *, staff_view: bool
) -> list[Document]:
    """The documents attached to the case, oldest first. Without ``staff_view``, those that
    came with an internal note are left out."""
    query = select(Document).where(Document.case_id == case_id)
    if not staff_view:
        internal = select(Message.id).where(
            Message.case_id == case_id, Message.direction == "internal"
        )
        query = query.where(
            col(Document.message_id).is_(None) | col(Document.message_id).not_in(internal)
        )
    return list((await session.exec(query.order_by(col(Document.created_at)))).all())
