"""What the case API takes and returns."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.models import CaseEvent
from journeys.engine import StatusView


class PartyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bsn: str | None = Field(None, description="Citizen service number (9 digits, eleven-test).")
    kvk_number: str | None = Field(None, description="Chamber of Commerce number (8 digits).")
    name: str = Field(min_length=1, max_length=300)
    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=20)

    @model_validator(mode="after")
    def _one_identifier(self) -> PartyIn:
        if (self.bsn is None) == (self.kvk_number is None):
            raise ValueError("give exactly one of bsn and kvk_number")
        return self


class CaseOpen(BaseModel):
    model_config = ConfigDict(extra="forbid")

    journey: str = Field(description="Journey id from `hub journeys list`.")
    party: PartyIn
    channel: Literal["api", "webchat", "email", "sms", "counter", "letter", "portal"] = "api"


class ActionIn(BaseModel):
    """A journey action. ``on`` defaults to today in the hub's time zone."""

    model_config = ConfigDict(extra="allow")

    kind: Literal[
        "advance",
        "request_information",
        "provide_information",
        "suspend",
        "resume",
        "extend",
        "decide",
        "withdraw",
    ]
    on: dt.date | None = None


class ContactOut(BaseModel):
    """Who the citizen deals with: the named contact person and their agency."""

    name: str | None
    agency: str
    agency_name: str


class CaseRecord(Protocol):
    """The fields of a case an answer shows: a :class:`~hub.models.Case`, or a row read for
    the answer alone (:class:`hub.cases.status_read.OwnCase`)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def reference(self) -> str: ...
    @property
    def journey_id(self) -> str: ...
    @property
    def journey_version(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def agency_id(self) -> str: ...
    @property
    def party_id(self) -> uuid.UUID: ...
    @property
    def stage(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def result(self) -> str | None: ...
    @property
    def expected_completion(self) -> dt.date | None: ...
    @property
    def opened_channel(self) -> str: ...
    @property
    def created_at(self) -> dt.datetime: ...
    @property
    def updated_at(self) -> dt.datetime: ...
    @property
    def closed_at(self) -> dt.datetime | None: ...
    @property
    def last_seq(self) -> int: ...


class CaseOut(BaseModel):
    id: uuid.UUID
    reference: str
    journey: str
    journey_version: int
    title: str
    agency: str
    participating_agencies: list[str]
    party_id: uuid.UUID
    stage: str
    status: str
    result: str | None
    expected_completion: dt.date | None
    opened_channel: str
    contact: ContactOut
    created_at: dt.datetime
    updated_at: dt.datetime
    closed_at: dt.datetime | None
    last_seq: int
    status_view: StatusView | None = Field(
        None, description="Where the case stands: stage k of n, whose turn, what next, dates."
    )

    @classmethod
    def of(
        cls,
        case: CaseRecord,
        *,
        contact: ContactOut,
        participants: list[str],
        view: StatusView | None = None,
        title: str | None = None,
    ) -> CaseOut:
        return cls(
            id=case.id,
            reference=case.reference,
            journey=case.journey_id,
            journey_version=case.journey_version,
            title=title or case.title,
            agency=case.agency_id,
            participating_agencies=participants,
            party_id=case.party_id,
            stage=case.stage,
            status=case.status,
            result=case.result,
            expected_completion=case.expected_completion,
            opened_channel=case.opened_channel,
            contact=contact,
            created_at=case.created_at,
            updated_at=case.updated_at,
            closed_at=case.closed_at,
            last_seq=case.last_seq,
            status_view=view,
        )


class EventOut(BaseModel):
    seq: int
    kind: str
    audience: str
    actor_kind: str
    actor_name: str | None
    payload: dict[str, Any]
    created_at: dt.datetime

    @classmethod
    def of(cls, event: CaseEvent) -> EventOut:
        return cls.model_validate(event, from_attributes=True)


class EventsOut(BaseModel):
    case_id: uuid.UUID
    events: list[EventOut]
    last_seq: int = Field(description="The highest sequence number returned (or `after`).")
    more: bool = Field(description="True when more events follow: ask again with this last_seq.")
