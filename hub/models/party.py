"""Parties (citizens and businesses), their digital addresses, and mandates."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel, UniqueConstraint

from hub.models._columns import json_column, new_id, timestamp


class Party(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    kind: str = Field(default="person", max_length=20)  # person | business
    bsn: str | None = Field(default=None, unique=True, max_length=9)
    kvk_number: str | None = Field(default=None, unique=True, max_length=8)
    name: str = Field(max_length=300)
    date_of_birth: dt.date | None = None
    preferred_channel: str = Field(default="portal", max_length=20)
    preferred_language: str = Field(default="nl", max_length=5)
    # e.g. ["plain_language", "no_digital_contact"]
    needs: list[str] = json_column(list)
    # For letters: street and number, postcode and town, one per line.
    postal_address: str | None = Field(default=None, max_length=500)
    created_at: dt.datetime = timestamp()


class DigitalAddress(SQLModel, table=True):
    __tablename__ = "digital_address"
    __table_args__ = (UniqueConstraint("party_id", "kind", "value"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    party_id: uuid.UUID = Field(foreign_key="party.id", index=True)
    kind: str = Field(max_length=10)  # email | phone
    value: str = Field(index=True, max_length=320)  # email lower-cased; phone in E.164
    verified_at: dt.datetime | None = timestamp(nullable=True)
    # The citizen texted STOP: no more texts to this number until START.
    opted_out_at: dt.datetime | None = timestamp(nullable=True)
    created_at: dt.datetime = timestamp()

    @property
    def verified(self) -> bool:
        return self.verified_at is not None


class Mandate(SQLModel, table=True):
    """A representative party may act for a party, for all journeys or the listed ones."""

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    representative_id: uuid.UUID = Field(foreign_key="party.id", index=True)
    party_id: uuid.UUID = Field(foreign_key="party.id", index=True)
    all_journeys: bool = True
    journeys: list[str] = json_column(list)
    valid_from: dt.datetime = timestamp()
    valid_until: dt.datetime | None = timestamp(nullable=True)
    revoked_at: dt.datetime | None = timestamp(nullable=True)
    created_at: dt.datetime = timestamp()

    def active_at(self, moment: dt.datetime) -> bool:
        if self.revoked_at is not None and self.revoked_at <= moment:
            return False
        if self.valid_until is not None and self.valid_until <= moment:
            return False
        return self.valid_from <= moment

    def covers(self, journey_id: str) -> bool:
        return self.all_journeys or journey_id in self.journeys


class PreferenceChange(SQLModel, table=True):
    """One change of a party's preference (channel, language or needs): from what to what,
    by whom and through which channel. Rows are never changed."""

    __tablename__ = "preference_change"

    id: int | None = Field(default=None, primary_key=True)
    party_id: uuid.UUID = Field(foreign_key="party.id", index=True)
    preference: str = Field(max_length=20)  # channel | language | needs
    # A channel or language code; for needs, the list of need codes.
    before: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    after: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    # Who changed it: the citizen, their representative, staff at the desk, an agency system.
    changed_by_kind: str = Field(max_length=20)
    changed_by_id: str | None = Field(default=None, max_length=64)
    changed_by_name: str = Field(default="", max_length=300)
    source: str = Field(max_length=20)  # portal | desk | api
    changed_at: dt.datetime = timestamp()
