"""The access log a citizen can read: who read or changed their data, when, and on what ground."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlmodel import Field, SQLModel

from hub.models._columns import new_id, timestamp


class AccessLogEntry(SQLModel, table=True):
    __tablename__ = "access_log"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    party_id: uuid.UUID = Field(foreign_key="party.id", index=True)
    actor_kind: str = Field(max_length=20)  # staff | agency | citizen | representative | system
    actor_id: str | None = Field(default=None, max_length=64)
    actor_name: str | None = Field(default=None, max_length=200)
    agency_id: str | None = Field(default=None, foreign_key="agency.id", max_length=64)
    processing_activity_id: int | None = Field(default=None, foreign_key="processing_activity.id")
    action: str = Field(max_length=20)  # read | change | search | list
    data: str = Field(max_length=100)  # what was seen: case, timeline, party, case_list…
    case_id: uuid.UUID | None = Field(default=None, foreign_key="case.id", index=True)
    request_id: str | None = Field(default=None, max_length=64)
    created_at: dt.datetime = timestamp(index=True)
