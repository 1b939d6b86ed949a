"""Agencies, their teams and staff, their register of processing activities, and API keys."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlmodel import Field, SQLModel, UniqueConstraint

from hub.models._columns import json_column, new_id, timestamp


class Agency(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64, description="Short code, e.g. 'toeslagen'.")
    name: str = Field(max_length=200)
    # {"mon": [["08:00", "17:00"]], ...} in the hub's time zone; a missing day is closed.
    opening_hours: dict[str, Any] = json_column()
    created_at: dt.datetime = timestamp()


class Team(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("agency_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    agency_id: str = Field(foreign_key="agency.id", index=True, max_length=64)
    name: str = Field(max_length=200)


class StaffMember(SQLModel, table=True):
    __tablename__ = "staff_member"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    agency_id: str = Field(foreign_key="agency.id", index=True, max_length=64)
    email: str = Field(unique=True, max_length=320)
    display_name: str = Field(max_length=200, description="The name citizens see.")
    role: str = Field(default="agent", max_length=20)  # agent | supervisor | admin
    password_hash: str | None = Field(default=None, max_length=200)
    totp_secret: str | None = Field(default=None, max_length=64)
    active: bool = True
    created_at: dt.datetime = timestamp()


class TeamMembership(SQLModel, table=True):
    __tablename__ = "team_membership"

    team_id: int = Field(foreign_key="team.id", primary_key=True)
    staff_id: uuid.UUID = Field(foreign_key="staff_member.id", primary_key=True)


class ProcessingActivity(SQLModel, table=True):
    """An entry in an agency's register: what personal data is processed for, on what ground."""

    __tablename__ = "processing_activity"
    __table_args__ = (UniqueConstraint("agency_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    agency_id: str = Field(foreign_key="agency.id", index=True, max_length=64)
    code: str = Field(max_length=100)
    purpose: str = Field(max_length=500)
    legal_ground: str = Field(max_length=500)
    created_at: dt.datetime = timestamp()


class ApiKey(SQLModel, table=True):
    """An agency system's key. Only a hash is stored; the key itself is shown once."""

    __tablename__ = "api_key"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    agency_id: str = Field(foreign_key="agency.id", index=True, max_length=64)
    name: str = Field(max_length=200)
    prefix: str = Field(unique=True, max_length=32)
    key_hash: str = Field(max_length=128)
    created_at: dt.datetime = timestamp()
    revoked_at: dt.datetime | None = timestamp(nullable=True)
    last_used_at: dt.datetime | None = timestamp(nullable=True)
