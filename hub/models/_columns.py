"""Column helpers shared by the table modules."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field

from hub.db import UTCDateTime, utcnow


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def timestamp(*, nullable: bool = False, index: bool = False) -> Any:
    """A timezone-aware UTC timestamp column; defaults to now when not nullable."""
    if nullable:
        return Field(default=None, sa_column=Column(UTCDateTime(), nullable=True, index=index))
    return Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=index)
    )


def json_column(default_factory: Any = dict) -> Any:
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=False))


__all__ = ["dt", "json_column", "new_id", "timestamp"]
