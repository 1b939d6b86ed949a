"""What the chat API takes and returns."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.db import MAX_INTEGER


class ChatStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_id: uuid.UUID | None = Field(
        None, description="Chat on this case (yours, or one you represent someone in)."
    )
    agency_id: str | None = Field(
        None,
        max_length=64,
        description="Without a case: the agency the question is for; the chat becomes a "
        "new question (vraag) case there.",
    )
    text: str | None = Field(None, max_length=10_000, description="The first line, if any.")
    ref: str | None = Field(None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _case_or_agency(self) -> ChatStart:
        if self.case_id is None and not self.agency_id:
            raise ValueError("give a case_id, or the agency_id a new question is for")
        return self


class OpeningOut(BaseModel):
    open: bool = Field(description="Whether staff answer the chat now (opening hours).")
    next_opening: dt.datetime | None = Field(
        None, description="When closed: when an answer can be expected, in the hub's time zone."
    )
    reply_options: list[str] = Field(
        description="Channels a reply could go by instead of the chat (verified addresses)."
    )


class ChatOut(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    case_reference: str
    agency_id: str
    agency_name: str
    status: str
    staff_name: str | None = Field(description="Who the citizen is talking to, once picked up.")
    reply_channel: str
    waiting_since: dt.datetime
    picked_up_at: dt.datetime | None
    closed_at: dt.datetime | None


class ChatStarted(BaseModel):
    chat: ChatOut
    opening: OpeningOut
    message: AckOut | None = None


class QueueEntryOut(BaseModel):
    conversation_id: uuid.UUID
    case_id: uuid.UUID
    case_reference: str
    case_title: str
    party_name: str
    waiting_seconds: int
    waiting_since: dt.datetime
    team_id: int | None
    for_me: bool = Field(description="Handed over to you by name.")
    handover_note: str | None = Field(description="The latest hand-over note (staff only).")


class HandOverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_staff_id: uuid.UUID | None = None
    to_team_id: int | None = Field(None, ge=1, le=MAX_INTEGER)
    to_agency_id: str | None = Field(None, max_length=64)
    note: str = Field(min_length=1, max_length=4000)


class ReplyChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["webchat", "email", "sms"]


class AttachIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_id: uuid.UUID = Field(description="An open case of the same party to move the chat to.")


class ChatLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=10_000)
    ref: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="Your id for the line: sending it again stores nothing new.",
    )


class AckOut(BaseModel):
    """A chat line stored (committed): its message id and its place in the case's log."""

    case_id: uuid.UUID
    message_id: uuid.UUID
    seq: int


ChatStarted.model_rebuild()
