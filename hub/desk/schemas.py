"""What the counter desk API takes and returns."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.cases.schemas import EventOut
from hub.messages.schemas import MAX_MESSAGE_CHARS, MAX_SUBJECT_CHARS, MessageOut


class DeskSearch(BaseModel):
    """One key to find the visitor by, and the purpose of the search. Identifiers travel in
    the body, never in the URL (servers log URLs)."""

    model_config = ConfigDict(extra="forbid")

    bsn: str | None = Field(None, description="Citizen service number.")
    kvk_number: str | None = Field(None, description="Chamber of Commerce number.")
    case_reference: str | None = Field(None, max_length=32, description="e.g. HU-2026-000123")
    name: str | None = Field(None, max_length=300, description="With date_of_birth.")
    date_of_birth: dt.date | None = None
    purpose: str = Field(
        max_length=100, description="Processing activity code from the agency's register."
    )

    @model_validator(mode="after")
    def _one_key(self) -> DeskSearch:
        keys = [self.bsn, self.kvk_number, self.case_reference, self.name]
        if sum(key is not None for key in keys) != 1:
            raise ValueError(
                "search by exactly one of bsn, kvk_number, case_reference, or name with "
                "date_of_birth"
            )
        if (self.name is None) != (self.date_of_birth is None):
            raise ValueError("a search by name needs date_of_birth, and only then is it used")
        return self


class AddressOut(BaseModel):
    kind: str
    value: str
    texts_stopped: bool = Field(description="The citizen texted STOP to this number.")


class RepresentativeOut(BaseModel):
    party_id: uuid.UUID
    name: str
    journeys: list[str] | None = Field(description="The journeys of the mandate; null: all.")
    valid_until: dt.datetime | None


class PartyCard(BaseModel):
    """The visitor as the desk sees them."""

    id: uuid.UUID
    kind: str
    name: str
    date_of_birth: dt.date | None
    kvk_number: str | None
    verified_addresses: list[AddressOut]
    postal_address: str | None
    contact_shown: bool = Field(
        description="Whether the addresses are shown: only to a desk whose agency may see "
        "one of the party's cases; otherwise the two fields above are empty."
    )
    preferred_channel: str
    preferred_language: str
    needs: list[str]
    representatives: list[RepresentativeOut]


class Timeline(BaseModel):
    events: list[EventOut]
    messages: list[MessageOut]


class DeskCase(BaseModel):
    """One of the visitor's cases. Every desk sees that it exists and where it stands; only
    an agency that may see the case gets its ``timeline``."""

    id: uuid.UUID
    reference: str
    title: str
    agency: str
    agency_name: str
    stage: str
    stage_name: str
    status: str
    visible: bool = Field(description="Whether the searching agency may see the case's contents.")
    timeline: Timeline | None


class DeskFound(BaseModel):
    party: PartyCard
    cases: list[DeskCase]


class VisitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: str = Field(
        min_length=1, max_length=MAX_SUBJECT_CHARS, description="What the visit was about."
    )
    summary: str | None = Field(
        None, max_length=MAX_MESSAGE_CHARS, description="What was discussed."
    )
    identity_document: str = Field(
        description="The identity document checked: passport, id_card, driving_licence or "
        "residence_permit. A visitor known by sight is not identified."
    )


class FollowUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(description="email, sms or letter: where the news will reach them.")


class FollowUpOut(BaseModel):
    case_id: uuid.UUID
    channel: str
    text: str = Field(description="What the citizen is told, in their language.")
    seq: int
