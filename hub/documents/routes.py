"""Documents on a case: uploaded by the citizen or their representative, or scanned at the
desk by staff; listed and downloaded by those who may see the case.

An upload is read as it streams in and refused as soon as it passes the size limit, so an
over-size file is never held in full, in memory or on disk. Its type is found from its
content; what the sender claims is ignored.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from typing import Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.types import Message as AsgiMessage

from hub.access.service import case_for_viewer
from hub.auth.dependencies import CurrentViewer
from hub.cases.service import act_on_case, record_case_access
from hub.clock import local_today
from hub.dependencies import BrokerDep, CatalogDep, SessionDep, SettingsDep
from hub.documents.service import (
    EXTENSIONS,
    DocumentTooLarge,
    announce_document,
    documents_of_case,
    sniff,
    store_document,
    stored_content,
)
from hub.errors import Forbidden, InvalidInput, NotFound
from hub.models import Document, Message
from journeys.engine import ProvideInformation

router = APIRouter(prefix="/api", tags=["documents"])

# Room for the multipart boundaries, the part headers and the small form fields.
UPLOAD_OVERHEAD = 64 * 1024
READ_CHUNK = 64 * 1024

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "source": {"type": "string", "enum": ["upload", "desk_scan"]},
                        "provides_information": {"type": "boolean"},
                        "message_id": {"type": "string", "format": "uuid"},
                    },
                }
            }
        },
    }
}


class UploadFields(BaseModel):
    """The form fields that come with the file."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["upload", "desk_scan"] | None = Field(
        None, description="'upload' by a citizen (the default for them); 'desk_scan' by staff."
    )
    provides_information: bool = Field(
        False,
        description="This is the information the case waits for: when it does, the "
        "citizen's turn ends.",
    )
    message_id: uuid.UUID | None = Field(None, description="A message on the case it belongs to.")


class DocumentOut(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID | None
    message_id: uuid.UUID | None
    filename: str
    content_type: str = Field(description="As found from the content.")
    size: int
    sha256: str
    source: str
    uploaded_by_kind: str
    created_at: dt.datetime

    @classmethod
    def of(cls, document: Document) -> DocumentOut:
        return cls.model_validate(document, from_attributes=True)


class DocumentAdded(DocumentOut):
    information_provided: bool = Field(
        description="Whether the upload answered the case's request for information."
    )


def too_large(max_bytes: int) -> DocumentTooLarge:
    return DocumentTooLarge(
        f"The file is larger than the {max_bytes:,} bytes we take. "
        "Send a smaller scan, or the pages one by one.",
        max_bytes=max_bytes,
    )


async def read_upload(
    request: Request, *, max_bytes: int
) -> tuple[str | None, bytes, dict[str, str]]:
    """The uploaded file's name and content and the other form fields.

    The request body is counted as it arrives and refused with 413 once it passes what a
    file of ``max_bytes`` can need, so nothing unbounded is read or spooled to disk.
    """
    budget = max_bytes + UPLOAD_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > budget:
        raise too_large(max_bytes)
    received = 0

    async def receive() -> AsgiMessage:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > budget:
                raise too_large(max_bytes)
        return message

    form = await Request(request.scope, receive).form(
        max_files=1, max_fields=10, max_part_size=16 * 1024
    )
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput(
                "Send the document as a file in the multipart/form-data field 'file'."
            )
        content = bytearray()
        while chunk := await upload.read(READ_CHUNK):
            content += chunk
            if len(content) > max_bytes:
                raise too_large(max_bytes)
        fields = {key: value for key, value in form.multi_items() if isinstance(value, str)}
        return upload.filename, bytes(content), fields
    finally:
        await form.close()


def upload_fields(raw: dict[str, str]) -> UploadFields:
    try:
        return UploadFields.model_validate(raw)
    except ValidationError as error:
        raise InvalidInput(
            "The form fields are not valid.",
            errors=[{"loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors()],
        ) from None


@router.post(
    "/cases/{case_id}/documents", status_code=status.HTTP_201_CREATED, openapi_extra=UPLOAD_BODY
)
async def upload_document(
    case_id: uuid.UUID,
    request: Request,
    viewer: CurrentViewer,
    session: SessionDep,
    settings: SettingsDep,
    catalog: CatalogDep,
    broker: BrokerDep,
) -> DocumentAdded:
    """Attach a document to the case: a PDF, or a photo or scan (PNG, JPEG, TIFF), at most
    ``HUB_MAX_UPLOAD_BYTES``. With ``provides_information=true`` on a case that waits for
    the citizen, the upload also answers that request."""
    if viewer.kind == "agency":
        raise Forbidden("Documents are added by the citizen, their representative, or the desk.")
    # Authorised before a byte of the file is read.
    case, representing = await case_for_viewer(session, viewer, case_id)
    filename, content, raw_fields = await read_upload(request, max_bytes=settings.max_upload_bytes)
    fields = upload_fields(raw_fields)
    staff = viewer.kind == "staff"
    source = fields.source or ("desk_scan" if staff else "upload")
    if source != ("desk_scan" if staff else "upload"):
        raise InvalidInput(
            "Staff add documents scanned at the desk (source 'desk_scan'); "
            "citizens upload them (source 'upload')."
        )
    if fields.message_id is not None:
        message = await session.get(Message, fields.message_id)
        hidden = message is not None and message.direction == "internal" and not staff
        if message is None or message.case_id != case.id or hidden:
            raise NotFound("No such message on this case.")
    actor = viewer.actor(representing=representing)
    document = await store_document(
        session,
        store=settings.document_store,
        content=content,
        filename=filename,
        source=source,
        uploaded_by_kind=actor.kind,
        uploaded_by_id=viewer.id,
        max_bytes=settings.max_upload_bytes,
        case_id=case.id,
        party_id=case.party_id,
        message_id=fields.message_id,
    )
    await announce_document(session, case_id=case.id, document=document, actor=actor, broker=broker)
    # The event above locked the case row: its state is read afresh, then acted on.
    await session.refresh(case)
    provided = fields.provides_information and case.status == "waiting_for_citizen"
    if provided:
        await act_on_case(
            session,
            catalog=catalog,
            case=case,
            action=ProvideInformation(
                on=local_today(settings.timezone), note=f"Document: {document.filename}"
            ),
            actor=actor,
            broker=broker,
            timezone=settings.timezone,
        )
    await record_case_access(session, viewer, case, catalog, action="change", data="document")
    return DocumentAdded(**DocumentOut.of(document).model_dump(), information_provided=provided)


@router.get("/cases/{case_id}/documents")
async def case_documents(
    case_id: uuid.UUID, viewer: CurrentViewer, session: SessionDep, catalog: CatalogDep
) -> list[DocumentOut]:
    """The documents attached to the case, oldest first."""
    case, _ = await case_for_viewer(session, viewer, case_id)
    await record_case_access(session, viewer, case, catalog, action="read", data="documents")
    documents = await documents_of_case(session, case.id, staff_view=viewer.kind != "citizen")
    return [DocumentOut.of(document) for document in documents]


def content_disposition(filename: str) -> str:
    """An ``attachment`` disposition: a plain ASCII name for old clients and the exact name
    percent-encoded (RFC 6266, RFC 8187) — no quote, backslash or line break gets through."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.get(
    "/documents/{document_id}",
    response_class=Response,
    responses={200: {"content": {content_type: {} for content_type in EXTENSIONS}}},
)
async def download_document(
    document_id: uuid.UUID,
    viewer: CurrentViewer,
    session: SessionDep,
    settings: SettingsDep,
    catalog: CatalogDep,
) -> Response:
    """The document's file, verified against its checksum, as an attachment. Whoever may
    see the case may download it (citizens not those of internal notes)."""
    document = await session.get(Document, document_id)
    if document is None or document.case_id is None:
        raise NotFound("No such document.")
    try:
        case, _ = await case_for_viewer(session, viewer, document.case_id)
    except NotFound:
        raise NotFound("No such document.") from None
    if viewer.kind == "citizen" and document.message_id is not None:
        message = await session.get(Message, document.message_id)
        if message is not None and message.direction == "internal":
            raise NotFound("No such document.")
    content = stored_content(settings.document_store, document)
    await record_case_access(session, viewer, case, catalog, action="read", data="document")
    digest = base64.b64encode(bytes.fromhex(document.sha256)).decode()
    return Response(
        content,
        media_type=sniff(content) or "application/octet-stream",
        headers={
            "Content-Disposition": content_disposition(document.filename),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
            "Repr-Digest": f"sha-256=:{digest}:",
        },
    )
