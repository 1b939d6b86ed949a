"""Request and response bodies of the auth endpoints."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, Field


class CodeRequest(BaseModel):
    address: str = Field(max_length=320, description="A verified email address or phone number.")


class CodeRequested(BaseModel):
    detail: str = "If this address is known and verified, a code has been sent."


class CodeLogin(BaseModel):
    address: str = Field(max_length=320)
    code: str = Field(max_length=12)


class StaffLogin(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1000)
    totp: str = Field(max_length=12)


class SessionCreated(BaseModel):
    token: str = Field(description="Send as 'Authorization: Bearer <token>'; also set as cookie.")
    expires_at: dt.datetime


class PartyRef(BaseModel):
    id: uuid.UUID
    name: str
    kind: str


class AgencyRef(BaseModel):
    id: str
    name: str


class Representation(BaseModel):
    """A party the citizen may act for, and within what."""

    party: PartyRef
    all_journeys: bool
    journeys: list[str]
    valid_until: dt.datetime | None


class Me(BaseModel):
    kind: Literal["citizen", "staff", "agency"]
    id: str
    name: str
    identified_by: str
    party: PartyRef | None = None
    agency: AgencyRef | None = None
    role: str | None = None
    represents: list[Representation] = Field(default_factory=list)
