"""The development outbox: what the hub would have sent by email, SMS or letter.

Served only in development mode. One-time login codes are shown here on purpose — this is
where a developer finds them — and never in a log.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from sqlmodel import col, select

from hub.config import Settings
from hub.dependencies import SessionDep, SettingsDep
from hub.documents.service import read_file
from hub.errors import NotFound
from hub.models import Document, OutboxItem, PrintJob
from hub.web.pages import render

router = APIRouter(tags=["development"], include_in_schema=True)


class OutboxEntry(BaseModel):
    id: uuid.UUID
    channel: str
    recipient: str
    subject: str
    body: str
    template: str
    status: str
    provider_id: str | None
    created_at: dt.datetime
    # The mail as it would have been sent (headers, reply address, text and HTML parts), or
    # the letter's PDF, when there is one.
    file_url: str | None = None


def mail_file(settings: Settings, item_id: uuid.UUID) -> Path:
    return settings.data_dir / "dev-mail" / f"{item_id}.eml"


async def latest(
    session: SessionDep, settings: Settings, limit: int, channel: str | None
) -> list[OutboxEntry]:
    query = select(OutboxItem).order_by(col(OutboxItem.created_at).desc()).limit(limit)
    if channel:
        query = query.where(OutboxItem.channel == channel)
    entries = []
    for item in (await session.exec(query)).all():
        entry = OutboxEntry.model_validate(item, from_attributes=True)
        if item.channel == "email" and mail_file(settings, item.id).exists():
            entry.file_url = f"/dev/outbox/{item.id}.eml"
        elif item.channel == "letter" and item.provider == "print-queue":
            entry.file_url = f"/dev/outbox/{item.id}.pdf"
        entries.append(entry)
    return entries


Limit = Annotated[int, Query(ge=1, le=500)]
Channel = Annotated[str | None, Query(pattern="^(email|sms|letter)$")]


@router.get("/api/dev/outbox")
async def outbox_json(
    session: SessionDep, settings: SettingsDep, limit: Limit = 50, channel: Channel = None
) -> list[OutboxEntry]:
    """The newest messages in the outbox, newest first (development mode only)."""
    return await latest(session, settings, limit, channel)


@router.get("/dev/outbox/{item_id}.eml")
async def outbox_mail(item_id: uuid.UUID, settings: SettingsDep) -> Response:
    """A mail exactly as it would have been sent; answer it by posting a reply to
    ``/api/inbound/email`` (development mode only)."""
    path = mail_file(settings, item_id)
    if not path.exists():
        raise NotFound("No such mail in the development outbox.")
    return Response(path.read_bytes(), media_type="message/rfc822")


@router.get("/dev/outbox/{item_id}.pdf")
async def outbox_letter(item_id: uuid.UUID, session: SessionDep, settings: SettingsDep) -> Response:
    """A letter's print-ready PDF (development mode only)."""
    job = (await session.exec(select(PrintJob).where(PrintJob.outbox_id == item_id))).first()
    document = await session.get(Document, job.document_id) if job else None
    if document is None:
        raise NotFound("No such letter in the development outbox.")
    return Response(read_file(settings.document_store, document), media_type="application/pdf")


@router.get("/dev/outbox", response_class=HTMLResponse)
async def outbox_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    limit: Limit = 50,
    channel: Channel = None,
) -> HTMLResponse:
    """The development outbox as a page: mail, texts and letters the hub would have sent."""
    entries = await latest(session, settings, limit, channel)
    return render(request, "pages/dev_outbox.html", {"entries": entries, "channel": channel})
