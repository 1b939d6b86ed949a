"""Proactive notices: consent topics and a party's consent history, templates, notices and
their bulk jobs, idempotency keys of agency requests, and webhook subscriptions."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import BigInteger, Index, text
from sqlmodel import Field, SQLModel, UniqueConstraint

from hub.models._columns import json_column, new_id, timestamp


class ConsentTopic(SQLModel, table=True):
    """Something an agency may tell citizens about unasked ("rights you may have"), under a
    processing activity of its register."""

    __tablename__ = "consent_topic"
    __table_args__ = (UniqueConstraint("agency_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    agency_id: str = Field(foreign_key="agency.id", index=True, max_length=64)
    code: str = Field(max_length=100)
    # {"nl": "...", "en": "..."}: what the citizen is asked to agree to, in plain language.
    title: dict[str, Any] = json_column()
    processing_activity_id: int = Field(foreign_key="processing_activity.id")
    created_at: dt.datetime = timestamp()


class Consent(SQLModel, table=True):
    """One answer of a party for a topic; the latest row is the consent in force, the rows
    before it its history. Rows are never changed."""

    id: int | None = Field(default=None, primary_key=True)
    party_id: uuid.UUID = Field(foreign_key="party.id", index=True)
    topic_id: int = Field(foreign_key="consent_topic.id", index=True)
    granted: bool
    # Who recorded it and how: the citizen in the portal, staff at the desk…
    recorded_by_kind: str = Field(max_length=20)
    recorded_by_id: str | None = Field(default=None, max_length=64)
    source: str = Field(max_length=20)  # portal | desk | api
    recorded_at: dt.datetime = timestamp(index=True)


class NoticeTemplate(SQLModel, table=True):
    """A notice's text for one channel and language, with ``{{ placeholders }}``."""

    __tablename__ = "notice_template"
    __table_args__ = (UniqueConstraint("agency_id", "code", "channel", "language"),)

    id: int | None = Field(default=None, primary_key=True)
    agency_id: str = Field(foreign_key="agency.id", index=True, max_length=64)
    code: str = Field(max_length=100)
    channel: str = Field(max_length=20)  # portal | email | sms | letter
    language: str = Field(max_length=5)
    subject: str = Field(default="", max_length=300)
    body: str
    created_at: dt.datetime = timestamp()
    updated_at: dt.datetime = timestamp()


class Notice(SQLModel, table=True):
    """One notice to one party: created → sending → a final status, or not sent (with why)."""

    __table_args__ = (
        UniqueConstraint("agency_id", "dedupe_key"),
        # A party's notices from an agency on a day: the daily cap, asked per party.
        Index("ix_notice_party_day", "party_id", "agency_id", "created_at"),
        # Only the few notices the worker looks for are indexed (a bulk job writes a million
        # rows; every index costs each of them): texts held through quiet hours…
        Index(
            "ix_notice_held",
            "created_at",
            postgresql_where=text("status = 'created'"),
            sqlite_where=text("status = 'created'"),
        ),
        # …and important notices that may have to be sent again by text or letter.
        Index(
            "ix_notice_unread_important",
            "created_at",
            postgresql_where=text("important AND read_at IS NULL AND escalated_at IS NULL"),
            sqlite_where=text("important AND read_at IS NULL AND escalated_at IS NULL"),
        ),
        # Insights count an agency's notices of a period: a BRIN index on PostgreSQL costs a
        # bulk row next to nothing, since rows arrive in the order of their creation time.
        Index("ix_notice_created_brin", "created_at", postgresql_using="brin"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    # A bulk job writes a million of these: agency, topic and job carry no foreign key (each
    # would cost every row a lookup, for rows that are never deleted and that the hub itself
    # names), and the agency is looked up through the (agency_id, dedupe_key) index.
    agency_id: str = Field(max_length=64)
    party_id: uuid.UUID | None = Field(default=None, foreign_key="party.id")
    topic_id: int
    template_code: str = Field(max_length=100)
    personalisation: dict[str, Any] = json_column()
    journey_id: str | None = Field(default=None, max_length=100)
    case_id: uuid.UUID | None = Field(default=None, foreign_key="case.id", index=True)
    important: bool = False
    escalate_after_days: int | None = None
    # The same notice to the same party is sent once: the agency's key for it, or a hash.
    dedupe_key: str = Field(max_length=200)
    # created | sending | delivered | permanent-failure | temporary-failure |
    # technical-failure | not-sent
    status: str = Field(default="created", max_length=30)
    # Why it was not sent: no_consent, no_address, daily_cap, unknown_party…
    reason: str | None = Field(default=None, max_length=50)
    channel: str | None = Field(default=None, max_length=20)
    subject: str = Field(default="", max_length=300)
    body: str = ""
    job_id: uuid.UUID | None = None
    job_row: int | None = None
    read_at: dt.datetime | None = timestamp(nullable=True)
    escalated_at: dt.datetime | None = timestamp(nullable=True)
    created_at: dt.datetime = timestamp()
    updated_at: dt.datetime = timestamp()


class NoticeJob(SQLModel, table=True):
    """A bulk file of notices (NDJSON or CSV) in the document store, routed in batches.

    ``offset`` is the byte where the next unread row starts and ``next_row`` the number of
    rows read: both move in the transaction that writes a batch's notices, so a job that
    stopped (a crash, a restart) resumes exactly after the last batch it wrote. Every row read
    is counted once: accepted (a notice that goes out), not sent (no consent, daily cap),
    duplicate (that notice was made before) or rejected (see ``NoticeJobRejection``).
    """

    __tablename__ = "notice_job"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    agency_id: str = Field(foreign_key="agency.id", index=True, max_length=64)
    format: str = Field(max_length=10)  # ndjson | csv
    document_id: uuid.UUID = Field(foreign_key="document.id")
    filename: str = Field(default="", max_length=255)
    size: int = Field(default=0, sa_type=BigInteger)
    # queued | running | done | cancelled | failed
    status: str = Field(default="queued", index=True, max_length=10)
    offset: int = Field(default=0, sa_type=BigInteger)
    next_row: int = 0
    accepted: int = 0
    not_sent: int = 0
    duplicates: int = 0
    rejected: int = 0
    # Why a job failed as a whole (its file unreadable); rows' errors are rejections.
    error: str | None = Field(default=None, max_length=1000)
    claimed_until: dt.datetime | None = timestamp(nullable=True)
    created_at: dt.datetime = timestamp()
    updated_at: dt.datetime = timestamp()
    started_at: dt.datetime | None = timestamp(nullable=True)
    finished_at: dt.datetime | None = timestamp(nullable=True)


class NoticeJobRejection(SQLModel, table=True):
    """A row of a bulk file that was refused, with why, for the job's report."""

    __tablename__ = "notice_job_rejection"

    job_id: uuid.UUID = Field(foreign_key="notice_job.id", primary_key=True)
    row: int = Field(primary_key=True)  # 1 for the first row of notices (after a CSV header)
    error: str = Field(max_length=1000)
    # The row as it was in the file, cut at 2,000 characters.
    content: str = Field(max_length=2000)


class IdempotencyKey(SQLModel, table=True):
    """An agency's POST with an ``Idempotency-Key``: the request's fingerprint and the
    answer it got, replayed for the same key and body."""

    __tablename__ = "idempotency_key"

    agency_id: str = Field(foreign_key="agency.id", primary_key=True, max_length=64)
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    # None while the first request is still running.
    status_code: int | None = None
    response_body: str | None = None
    response_headers: dict[str, Any] = json_column()
    created_at: dt.datetime = timestamp(index=True)


class WebhookSubscription(SQLModel, table=True):
    """Where an agency wants status changes and inbound replies, as signed CloudEvents."""

    __tablename__ = "webhook_subscription"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    agency_id: str = Field(foreign_key="agency.id", index=True, max_length=64)
    url: str = Field(max_length=2000)
    # The signing secret, shown once when the subscription is made.
    secret: str = Field(max_length=200)
    event_types: list[str] = json_column(list)
    active: bool = True
    created_at: dt.datetime = timestamp()


class WebhookDelivery(SQLModel, table=True):
    """One CloudEvent to one subscription, retried with backoff until delivered or given up."""

    __tablename__ = "webhook_delivery"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    subscription_id: uuid.UUID = Field(foreign_key="webhook_subscription.id", index=True)
    event: dict[str, Any] = json_column()
    # pending | sending | delivered | technical-failure
    status: str = Field(default="pending", index=True, max_length=30)
    attempts: int = 0
    next_attempt_at: dt.datetime = timestamp(index=True)
    claimed_until: dt.datetime | None = timestamp(nullable=True)
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: dt.datetime = timestamp()
    updated_at: dt.datetime = timestamp()
