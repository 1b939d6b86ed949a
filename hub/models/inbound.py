"""What arrives from outside: the review queue of unmatched mail and texts, documents, and
receipts that make repeated webhooks apply once."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlmodel import Field, SQLModel

from hub.models._columns import json_column, new_id, timestamp


class ReviewItem(SQLModel, table=True):
    """Inbound mail or a text that matched no case: kept for staff, never dropped."""

    __tablename__ = "review_item"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    channel: str = Field(max_length=20)  # email | sms
    sender: str = Field(max_length=320)  # as given by the channel; identifies nobody by itself
    subject: str | None = Field(default=None, max_length=300)
    body: str
    original_body: str | None = None
    external_id: str | None = Field(default=None, index=True, max_length=300)
    # Why it is here: no_token, token_invalid, unknown_sender, several_open_cases…
    reason: str = Field(max_length=50)
    # Suggestions for staff (a party the sender's verified address belongs to…), mail verdicts.
    meta: dict[str, Any] = json_column()
    status: str = Field(default="open", index=True, max_length=10)  # open | attached | discarded
    party_id: uuid.UUID | None = Field(default=None, foreign_key="party.id")
    case_id: uuid.UUID | None = Field(default=None, foreign_key="case.id")
    message_id: uuid.UUID | None = Field(default=None, foreign_key="message.id")
    resolved_by: uuid.UUID | None = Field(default=None, foreign_key="staff_member.id")
    resolved_at: dt.datetime | None = timestamp(nullable=True)
    received_at: dt.datetime = timestamp(index=True)


class Document(SQLModel, table=True):
    """A file stored outside the database (``storage_key`` under the document store), with its
    checksum; attached to a case and, when it came with one, to a message or review item."""

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    case_id: uuid.UUID | None = Field(default=None, foreign_key="case.id", index=True)
    party_id: uuid.UUID | None = Field(default=None, foreign_key="party.id", index=True)
    message_id: uuid.UUID | None = Field(default=None, foreign_key="message.id", index=True)
    review_item_id: uuid.UUID | None = Field(default=None, foreign_key="review_item.id")
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=100)  # as found from the content, not as claimed
    size: int
    sha256: str = Field(max_length=64, index=True)
    storage_key: str = Field(max_length=200)
    # upload | email | desk_scan | letter | raw_mail
    source: str = Field(max_length=20)
    uploaded_by_kind: str = Field(max_length=20)
    uploaded_by_id: str | None = Field(default=None, max_length=64)
    created_at: dt.datetime = timestamp()


class InboundReceipt(SQLModel, table=True):
    """One row per provider event applied (a Twilio MessageSid and status, a mail's
    Message-ID): the primary key makes a repeated webhook a no-op."""

    __tablename__ = "inbound_receipt"

    source: str = Field(primary_key=True, max_length=30)  # twilio-sms, twilio-status, email…
    external_id: str = Field(primary_key=True, max_length=300)
    received_at: dt.datetime = timestamp()


class PrintJob(SQLModel, table=True):
    """A letter waiting in the print queue, collected and posted by a print-and-post provider
    or the agency's mail room."""

    __tablename__ = "print_job"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    outbox_id: uuid.UUID = Field(foreign_key="outbox.id", unique=True)
    agency_id: str | None = Field(default=None, foreign_key="agency.id", index=True, max_length=64)
    case_id: uuid.UUID | None = Field(default=None, foreign_key="case.id", index=True)
    document_id: uuid.UUID = Field(foreign_key="document.id")
    recipient: str = Field(max_length=500)
    status: str = Field(default="queued", index=True, max_length=10)  # queued | collected | posted
    collected_at: dt.datetime | None = timestamp(nullable=True)
    posted_at: dt.datetime | None = timestamp(nullable=True)
    created_at: dt.datetime = timestamp()
