"""What the message APIs take and return, and the check every typed text passes.

The case thread, the counter desk and anything else that shows messages share these, so a
message looks the same wherever staff or citizens read it.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hub.errors import InvalidInput

MAX_MESSAGE_CHARS = 10_000
# What may not be in a text that can reach a mail header (a subject, a name): any control
# character or line or paragraph separator, a CR or LF written as %0d or %0a, and RFC 2047
# encoded words, which a mail program decodes, line breaks and all.
HEADER_BREAKERS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]|%0[ad]|=\?[^?]*\?[bq]\?", re.I)
MAX_SUBJECT_CHARS = 300
# Where a staff reply may go; the thread (portal) always shows it too.
ReplyChannel = Literal["webchat", "email", "sms", "letter", "portal"]


class AttachmentOut(BaseModel):
    id: uuid.UUID
    filename: str
    content_type: str
    size: int


class MessageOut(BaseModel):
    """One contact on the thread. ``seq`` is the position of its event in the case's log, so
    a client following the case live can place it among the other events."""

    id: uuid.UUID
    seq: int | None
    channel: str
    direction: str
    author_kind: str
    author_name: str | None
    subject: str | None
    body: str
    original_body: str | None = Field(
        None, description="The message as it arrived (staff, with ?original=true)."
    )
    delivery_status: str | None
    identified_by: str | None
    meta: dict[str, Any] | None = Field(None, description="Channel details (staff only).")
    attachments: list[AttachmentOut]
    created_at: dt.datetime


class PostedMessageOut(MessageOut):
    requested_channel: str | None = Field(
        None,
        description="The channel staff asked for; differs from `channel` when the reply "
        "fell back to the next channel for want of an address.",
    )


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(description=f"The text, at most {MAX_MESSAGE_CHARS:,} characters.")
    subject: str | None = Field(None, description=f"At most {MAX_SUBJECT_CHARS} characters.")
    channel: ReplyChannel | None = Field(
        None,
        description="Staff only: where the reply goes. Default: the channel the citizen "
        "last wrote on.",
    )
    internal: bool = Field(False, description="Staff only: a note the citizen never sees.")


def checked_text(text: str, *, what: str, limit: int) -> str:
    """Text as a person typed it, refused clearly when it cannot be a message: empty, too
    long, or with control characters a database cannot store or a screen cannot show."""
    text = text.strip()
    if not text:
        raise InvalidInput(f"The {what} is empty.")
    if len(text) > limit:
        raise InvalidInput(
            f"The {what} has {len(text):,} characters; the most we take is {limit:,}.",
            limit=limit,
        )
    if any(ord(ch) < 32 and ch not in "\n\r\t" for ch in text):
        raise InvalidInput(f"The {what} contains control characters.")
    return text


def checked_line(text: str, *, what: str, limit: int) -> str:
    """A text that may end up in a mail header, such as a subject or a name: as
    :func:`checked_text`, and refused when it holds a line break in any form, written out
    or encoded (:data:`HEADER_BREAKERS`)."""
    text = checked_text(text, what=what, limit=limit)
    if HEADER_BREAKERS.search(text):
        raise InvalidInput(
            f"The {what} must be one line of plain text: no line breaks or control "
            "characters, written out or encoded."
        )
    return text
