"""The outbox of what must be delivered, and durable timers."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlmodel import Field, SQLModel

from hub.models._columns import json_column, new_id, timestamp


class OutboxItem(SQLModel, table=True):
    """Something to deliver, written in the transaction of the change that caused it."""

    __tablename__ = "outbox"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    case_id: uuid.UUID | None = Field(default=None, foreign_key="case.id", index=True)
    party_id: uuid.UUID | None = Field(default=None, foreign_key="party.id", index=True)
    message_id: uuid.UUID | None = Field(default=None, foreign_key="message.id")
    notice_id: uuid.UUID | None = Field(default=None, foreign_key="notice.id", index=True)
    channel: str = Field(max_length=20)  # email | sms | letter
    recipient: str = Field(max_length=320)
    template: str = Field(max_length=100)
    language: str = Field(default="nl", max_length=5)
    subject: str = Field(default="", max_length=300)
    body: str
    html: str | None = None
    # Channel details: reply address, headers, the channels tried before this one…
    meta: dict[str, Any] = json_column()
    # pending → sending → delivered | permanent-failure | temporary-failure | technical-failure
    status: str = Field(default="pending", index=True, max_length=30)
    attempts: int = 0
    next_attempt_at: dt.datetime = timestamp(index=True)
    claimed_until: dt.datetime | None = timestamp(nullable=True)
    provider: str | None = Field(default=None, max_length=30)
    provider_id: str | None = Field(default=None, index=True, max_length=200)
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: dt.datetime = timestamp()
    updated_at: dt.datetime = timestamp()


class Timer(SQLModel, table=True):
    """Time-driven work: a row with a due time, fired by the worker."""

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    case_id: uuid.UUID | None = Field(default=None, foreign_key="case.id", index=True)
    kind: str = Field(max_length=50)
    due_at: dt.datetime = timestamp(index=True)
    payload: dict[str, Any] = json_column()
    fired_at: dt.datetime | None = timestamp(nullable=True)
    cancelled_at: dt.datetime | None = timestamp(nullable=True)
    created_at: dt.datetime = timestamp()
