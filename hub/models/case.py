"""The shared case record: cases, participating agencies, the event log, and messages."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Index, event, text
from sqlmodel import Field, SQLModel, UniqueConstraint

from hub.models._columns import json_column, new_id, timestamp


class Case(SQLModel, table=True):
    __table_args__ = (
        # Insights: an agency's cases opened in a period, and its open cases by stage.
        Index("ix_case_agency_created", "agency_id", "created_at"),
        Index(
            "ix_case_open_stage",
            "agency_id",
            "journey_id",
            "stage",
            "stage_entered_on",
            postgresql_where=text("status <> 'closed'"),
            sqlite_where=text("status <> 'closed'"),
        ),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    reference: str = Field(unique=True, max_length=32)  # HT-2026-000123
    journey_id: str = Field(index=True, max_length=100)
    journey_version: int
    agency_id: str = Field(foreign_key="agency.id", index=True, max_length=64)
    party_id: uuid.UUID = Field(foreign_key="party.id", index=True)
    title: str = Field(max_length=300)
    stage: str = Field(max_length=100)
    status: str = Field(default="open", max_length=30)
    # The journey engine's CaseState, as JSON; the columns above mirror it for queries.
    state: dict[str, Any] = json_column()
    owner_id: uuid.UUID | None = Field(default=None, foreign_key="staff_member.id", index=True)
    opened_channel: str = Field(default="api", max_length=20)
    expected_completion: dt.date | None = None
    stage_entered_on: dt.date | None = None  # the state's, kept in step (see below)
    result: str | None = Field(default=None, max_length=50)
    last_seq: int = 0
    created_at: dt.datetime = timestamp()
    updated_at: dt.datetime = timestamp()
    closed_at: dt.datetime | None = timestamp(nullable=True)


@event.listens_for(Case, "before_insert")
@event.listens_for(Case, "before_update")
def _stage_entered_on(mapper: Any, connection: Any, case: Case) -> None:
    """The day the case entered its stage, from its state, as a column: insights count open
    cases by it through an index alone, where reading it from the state read every one."""
    entered = (case.state or {}).get("stage_entered_on")
    case.stage_entered_on = dt.date.fromisoformat(entered) if isinstance(entered, str) else None


class CaseParticipant(SQLModel, table=True):
    """An agency that takes part in a case it does not own."""

    __tablename__ = "case_participant"

    case_id: uuid.UUID = Field(foreign_key="case.id", primary_key=True)
    agency_id: str = Field(foreign_key="agency.id", primary_key=True, max_length=64)
    added_at: dt.datetime = timestamp()


class CaseEvent(SQLModel, table=True):
    """One entry of a case's append-only log; ``seq`` counts 1, 2, 3… per case, without gaps."""

    __tablename__ = "case_event"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case.id", index=True)
    seq: int
    kind: str = Field(max_length=50)
    audience: str = Field(default="citizen", max_length=10)  # citizen | staff
    actor_kind: str = Field(max_length=20)  # citizen | representative | staff | agency | system
    actor_id: str | None = Field(default=None, max_length=64)
    actor_name: str | None = Field(default=None, max_length=200)
    payload: dict[str, Any] = json_column()
    created_at: dt.datetime = timestamp()


class Message(SQLModel, table=True):
    __table_args__ = (
        # Insights: the citizens' messages in a period, per week and channel.
        Index(
            "ix_message_inbound_created",
            "created_at",
            postgresql_where=text("direction = 'inbound'"),
            sqlite_where=text("direction = 'inbound'"),
        ),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    case_id: uuid.UUID | None = Field(default=None, foreign_key="case.id", index=True)
    party_id: uuid.UUID | None = Field(default=None, foreign_key="party.id", index=True)
    channel: str = Field(max_length=20)  # webchat | email | sms | counter | letter | portal | api
    direction: str = Field(max_length=10)  # inbound | outbound | internal
    author_kind: str = Field(max_length=20)
    author_id: str | None = Field(default=None, max_length=64)
    author_name: str | None = Field(default=None, max_length=200)
    subject: str | None = Field(default=None, max_length=300)
    # What the citizen sees: for mail, the reply without quoted history and signature.
    body: str
    # The message as it arrived (mail with its quotes), kept when ``body`` was cut from it.
    original_body: str | None = None
    # Provider's id (Twilio MessageSid, a mail's Message-ID); with ``channel`` unique per inbound.
    external_id: str | None = Field(default=None, index=True, max_length=300)
    conversation_id: uuid.UUID | None = Field(
        default=None, foreign_key="conversation.id", index=True
    )
    # Channel details: mail authentication verdict, SMS segments, identity document checked…
    meta: dict[str, Any] = json_column()
    delivery_status: str | None = Field(default=None, max_length=30)
    # How the sender was identified: session, otp, digid, reply_token, verified_phone, id_document…
    identified_by: str | None = Field(default=None, max_length=50)
    created_at: dt.datetime = timestamp()
    # A message to the citizen: when the citizen first saw it in the portal (the case page).
    read_at: dt.datetime | None = timestamp(nullable=True)


class ReferenceCounter(SQLModel, table=True):
    """The last case number handed out per reference prefix and year (HT-2026-000123)."""

    __tablename__ = "reference_counter"

    prefix: str = Field(primary_key=True, max_length=8)
    year: int = Field(primary_key=True)
    last: int = 0


class Conversation(SQLModel, table=True):
    """A live chat on a case: waiting in an agency's queue, then with one member of staff.

    ``agency_id`` is the agency whose queue holds it (the case's owner or a participant);
    ``team_id`` narrows the queue to a team after a hand-over.
    """

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case.id", index=True)
    party_id: uuid.UUID = Field(foreign_key="party.id", index=True)
    agency_id: str = Field(foreign_key="agency.id", index=True, max_length=64)
    team_id: int | None = Field(default=None, foreign_key="team.id")
    staff_id: uuid.UUID | None = Field(default=None, foreign_key="staff_member.id", index=True)
    status: str = Field(default="waiting", index=True, max_length=10)  # waiting | active | closed
    # Where staff replies go when the citizen is not in the chat: webchat | email | sms.
    reply_channel: str = Field(default="webchat", max_length=20)
    waiting_since: dt.datetime = timestamp()
    picked_up_at: dt.datetime | None = timestamp(nullable=True)
    closed_at: dt.datetime | None = timestamp(nullable=True)
    created_at: dt.datetime = timestamp()
