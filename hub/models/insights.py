"""The insights figures of completed days, rolled up per agency and local day, so that a
report reads a row a day and journey instead of every case and message of its period.

A day's rows are used only while the fingerprint kept in ``insight_day`` still matches the
rows they were counted from (hub/insights/rollup.py says how).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel

from hub.models._columns import timestamp


class InsightDay(SQLModel, table=True):
    """One agency's local day as it was when rolled up: the fingerprint of its rows."""

    __tablename__ = "insight_day"

    agency_id: str = Field(foreign_key="agency.id", primary_key=True, max_length=64)
    day: dt.date = Field(primary_key=True)
    # The agency's cases opened that day and the sum of their event counts (``last_seq``):
    # every change to a case appends an event, so any change to the day's cohort moves these.
    cases: int
    case_events: int = Field(sa_type=BigInteger)
    # Every agency's messages from citizens that day (messages are only ever added).
    inbound: int
    rolled_at: dt.datetime = timestamp()


class InsightCohort(SQLModel, table=True):
    """The cases a journey opened that day, and what has happened to them since."""

    __tablename__ = "insight_cohort"

    agency_id: str = Field(primary_key=True, max_length=64)
    day: dt.date = Field(primary_key=True)
    journey_id: str = Field(primary_key=True, max_length=100)
    opened: int
    closed: int
    within_norm: int
    lead_days: int
    contacts: int
    switches: int
    first_contact_resolved: int


class InsightFirstResponse(SQLModel, table=True):
    """The cohort's cases by the channel of the citizen's first message: how many, how many
    staff answered, and the waits until the first answer added up."""

    __tablename__ = "insight_first_response"

    agency_id: str = Field(primary_key=True, max_length=64)
    day: dt.date = Field(primary_key=True)
    journey_id: str = Field(primary_key=True, max_length=100)
    channel: str = Field(primary_key=True, max_length=20)
    cases: int
    answered: int
    waited_ms: int = Field(sa_type=BigInteger)


class InsightChannelDay(SQLModel, table=True):
    """The citizens' messages that day on the journey's cases, per channel."""

    __tablename__ = "insight_channel_day"

    agency_id: str = Field(primary_key=True, max_length=64)
    day: dt.date = Field(primary_key=True)
    journey_id: str = Field(primary_key=True, max_length=100)
    channel: str = Field(primary_key=True, max_length=20)
    messages: int
