"""Login codes and sessions. Only hashes of codes and tokens are stored."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlmodel import Field, SQLModel

from hub.models._columns import new_id, timestamp


class LoginCode(SQLModel, table=True):
    __tablename__ = "login_code"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    party_id: uuid.UUID = Field(foreign_key="party.id", index=True)
    address_id: uuid.UUID = Field(foreign_key="digital_address.id")
    code_hash: str = Field(max_length=128)
    attempts: int = 0
    expires_at: dt.datetime = timestamp()
    used_at: dt.datetime | None = timestamp(nullable=True)
    created_at: dt.datetime = timestamp()


class LoginSession(SQLModel, table=True):
    __tablename__ = "login_session"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    token_hash: str = Field(unique=True, max_length=128)
    subject_kind: str = Field(max_length=10)  # citizen | staff
    subject_id: uuid.UUID = Field(index=True)
    identified_by: str = Field(max_length=30)  # otp | oidc | password+totp
    created_at: dt.datetime = timestamp()
    expires_at: dt.datetime = timestamp()
    revoked_at: dt.datetime | None = timestamp(nullable=True)
