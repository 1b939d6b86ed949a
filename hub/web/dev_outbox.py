"""The development outbox: what the hub would have sent by email, SMS or letter.

Served only in development mode. One-time login codes are shown here on purpose — this is
where a developer finds them — and never in a log.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel
from sqlmodel import col, select

from hub.dependencies import SessionDep
from hub.models import OutboxItem

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parents[2] / "templates")

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


async def latest(session: SessionDep, limit: int, channel: str | None) -> list[OutboxEntry]:
    query = select(OutboxItem).order_by(col(OutboxItem.created_at).desc()).limit(limit)
    if channel:
        query = query.where(OutboxItem.channel == channel)
    return [
        OutboxEntry.model_validate(item, from_attributes=True)
        for item in (await session.exec(query)).all()
    ]


Limit = Annotated[int, Query(ge=1, le=500)]
Channel = Annotated[str | None, Query(pattern="^(email|sms|letter)$")]


@router.get("/api/dev/outbox")
async def outbox_json(
    session: SessionDep, limit: Limit = 50, channel: Channel = None
) -> list[OutboxEntry]:
    """The newest messages in the outbox, newest first (development mode only)."""
    return await latest(session, limit, channel)


@router.get("/dev/outbox", response_class=HTMLResponse)
async def outbox_page(
    request: Request, session: SessionDep, limit: Limit = 50, channel: Channel = None
) -> HTMLResponse:
    """The development outbox as a page: mail, texts and letters the hub would have sent."""
    entries = await latest(session, limit, channel)
    return TEMPLATES.TemplateResponse(
        request, "pages/dev_outbox.html", {"entries": entries, "channel": channel}
    )
