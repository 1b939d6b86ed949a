"""What the notices API reads and answers."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.models import Consent, ConsentTopic, Notice, NoticeTemplate

Channel = Literal["portal", "email", "sms", "letter"]
Language = Literal["nl", "en"]
CODE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,99}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TopicTitle(Strict):
    nl: str = Field(min_length=1, max_length=300)
    en: str = Field(min_length=1, max_length=300)


class TopicIn(Strict):
    code: str = Field(pattern=CODE_PATTERN)
    title: TopicTitle
    processing_activity: str = Field(
        min_length=1, max_length=100, description="Code of an activity in the agency's register."
    )


class TopicOut(BaseModel):
    id: int
    agency_id: str
    code: str
    title: dict[str, Any]
    processing_activity: str | None
    created_at: dt.datetime


def topic_out(topic: ConsentTopic, activity_code: str | None) -> TopicOut:
    assert topic.id is not None
    return TopicOut(
        id=topic.id,
        agency_id=topic.agency_id,
        code=topic.code,
        title=topic.title,
        processing_activity=activity_code,
        created_at=topic.created_at,
    )


class ConsentIn(Strict):
    granted: bool


class ConsentRecordOut(BaseModel):
    """One answer: what was said, when, by whom and where."""

    granted: bool
    recorded_at: dt.datetime
    recorded_by_kind: str
    source: str

    @classmethod
    def of(cls, consent: Consent) -> ConsentRecordOut:
        return cls(
            granted=consent.granted,
            recorded_at=consent.recorded_at,
            recorded_by_kind=consent.recorded_by_kind,
            source=consent.source,
        )


class TopicConsentOut(BaseModel):
    """A topic with the party's answer in force (``granted`` false when never answered)."""

    topic_id: int
    agency_id: str
    code: str
    title: dict[str, Any]
    granted: bool
    answered: ConsentRecordOut | None


class TemplateIn(Strict):
    subject: str = Field(default="", max_length=300)
    body: str = Field(min_length=1, max_length=20_000)


class TemplateOut(BaseModel):
    code: str
    channel: str
    language: str
    subject: str
    body: str
    placeholders: list[str]
    updated_at: dt.datetime


class PreviewIn(Strict):
    channel: Channel
    language: Language
    personalisation: dict[str, Any] = Field(default_factory=dict)


class PreviewOut(BaseModel):
    subject: str
    body: str
    segments: int | None = None
    encoding: str | None = None


class NoticeIn(Strict):
    bsn: str | None = None
    kvk_number: str | None = None
    topic: str = Field(min_length=1, max_length=100, description="Consent topic code.")
    template: str = Field(min_length=1, max_length=100, description="Notice template code.")
    personalisation: dict[str, Any] = Field(default_factory=dict)
    journey_id: str | None = Field(default=None, max_length=100)
    case_id: uuid.UUID | None = None
    important: bool = False
    escalate_after_days: int | None = Field(default=None, ge=1, le=365)
    dedupe_key: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("personalisation")
    @classmethod
    def _flat(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, item in value.items():
            if not key.isidentifier():
                raise ValueError(f"'{key}' is not a placeholder name")
            if item is not None and not isinstance(item, (str, int, float, bool)):
                raise ValueError(f"'{key}' must be text, a number or true/false")
        return value


class NoticeOut(BaseModel):
    """A notice as its agency sees it: where it went and how far it got."""

    id: uuid.UUID
    party_id: uuid.UUID | None
    topic_id: int
    template: str = Field(validation_alias="template_code")
    status: str
    reason: str | None
    channel: str | None
    journey_id: str | None
    case_id: uuid.UUID | None
    important: bool
    dedupe_key: str
    read_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, notice: Notice) -> NoticeOut:
        return cls.model_validate(notice, from_attributes=True)


class InboxNoticeOut(BaseModel):
    """A notice in the citizen's portal inbox."""

    id: uuid.UUID
    agency_id: str
    subject: str
    body: str
    journey_id: str | None
    case_id: uuid.UUID | None
    important: bool
    read_at: dt.datetime | None
    created_at: dt.datetime

    @classmethod
    def of(cls, notice: Notice) -> InboxNoticeOut:
        return cls.model_validate(notice, from_attributes=True)


def template_out(template: NoticeTemplate, placeholders: list[str]) -> TemplateOut:
    return TemplateOut(
        code=template.code,
        channel=template.channel,
        language=template.language,
        subject=template.subject,
        body=template.body,
        placeholders=placeholders,
        updated_at=template.updated_at,
    )
