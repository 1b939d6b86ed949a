"""Consent topics and a party's consent per topic, with its history.

An agency registers what it wants to tell citizens about unasked (a topic) under a processing
activity of its register; a citizen (or their representative) says yes or no per topic. Every
answer is a new row: the latest is the consent in force, the rows before it its history.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.access.service import require_activity
from hub.db import utcnow
from hub.errors import Conflict, NotFound
from hub.models import Consent, ConsentTopic, ProcessingActivity

ConsentSource = Literal["portal", "desk", "api"]


@dataclass(frozen=True)
class TopicConsent:
    """A topic and the party's answer in force for it (None: never asked or answered)."""

    topic: ConsentTopic
    consent: Consent | None

    @property
    def granted(self) -> bool:
        return self.consent is not None and self.consent.granted


async def register_topic(
    session: AsyncSession, *, agency_id: str, code: str, title: dict[str, str], activity_code: str
) -> ConsentTopic:
    """A new consent topic of the agency; the processing activity must be in its register."""
    activity = await require_activity(session, agency_id=agency_id, code=activity_code)
    assert activity.id is not None
    existing = await topic_by_code(session, agency_id=agency_id, code=code)
    if existing is not None:
        raise Conflict(f"Agency '{agency_id}' already has a consent topic '{code}'.")
    topic = ConsentTopic(
        agency_id=agency_id, code=code, title=title, processing_activity_id=activity.id
    )
    try:
        async with session.begin_nested():
            session.add(topic)
    except IntegrityError:
        raise Conflict(f"Agency '{agency_id}' already has a consent topic '{code}'.") from None
    return topic


async def topics_of_agency(session: AsyncSession, agency_id: str) -> list[ConsentTopic]:
    query = (
        select(ConsentTopic)
        .where(ConsentTopic.agency_id == agency_id)
        .order_by(col(ConsentTopic.code))
    )
    return list((await session.exec(query)).all())


async def topic_by_code(session: AsyncSession, *, agency_id: str, code: str) -> ConsentTopic | None:
    query = select(ConsentTopic).where(
        ConsentTopic.agency_id == agency_id, ConsentTopic.code == code
    )
    return (await session.exec(query)).first()


async def activity_of(session: AsyncSession, topic: ConsentTopic) -> ProcessingActivity | None:
    return await session.get(ProcessingActivity, topic.processing_activity_id)


async def get_topic(session: AsyncSession, topic_id: int) -> ConsentTopic:
    topic = await session.get(ConsentTopic, topic_id)
    if topic is None:
        raise NotFound("No such consent topic.")
    return topic


async def record_consent(
    session: AsyncSession,
    *,
    party_id: uuid.UUID,
    topic: ConsentTopic,
    granted: bool,
    recorded_by_kind: str,
    recorded_by_id: str | None,
    source: ConsentSource,
) -> Consent:
    """Add the party's new answer for the topic; earlier answers stay as its history."""
    assert topic.id is not None
    consent = Consent(
        party_id=party_id,
        topic_id=topic.id,
        granted=granted,
        recorded_by_kind=recorded_by_kind,
        recorded_by_id=recorded_by_id,
        source=source,
        recorded_at=utcnow(),
    )
    session.add(consent)
    await session.flush()
    return consent


async def consent_history(
    session: AsyncSession, *, party_id: uuid.UUID, topic_id: int
) -> list[Consent]:
    """Every answer of the party for the topic, oldest first."""
    query = (
        select(Consent)
        .where(Consent.party_id == party_id, Consent.topic_id == topic_id)
        .order_by(col(Consent.recorded_at), col(Consent.id))
    )
    return list((await session.exec(query)).all())


async def consent_in_force(
    session: AsyncSession, *, party_id: uuid.UUID, topic_id: int
) -> Consent | None:
    """The party's latest answer for the topic, if they ever gave one."""
    query = (
        select(Consent)
        .where(Consent.party_id == party_id, Consent.topic_id == topic_id)
        .order_by(col(Consent.recorded_at).desc(), col(Consent.id).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


async def consents_of_party(
    session: AsyncSession, party_id: uuid.UUID, *, agency_id: str | None = None
) -> list[TopicConsent]:
    """Every topic (of every agency, or of ``agency_id`` only) with the party's answer in
    force, topics ordered by agency and code."""
    topics_query = select(ConsentTopic).order_by(
        col(ConsentTopic.agency_id), col(ConsentTopic.code)
    )
    if agency_id is not None:
        topics_query = topics_query.where(ConsentTopic.agency_id == agency_id)
    topics = list((await session.exec(topics_query)).all())
    answers = (
        await session.exec(
            select(Consent)
            .where(
                Consent.party_id == party_id,
                col(Consent.topic_id).in_([t.id for t in topics]),
            )
            .order_by(col(Consent.recorded_at), col(Consent.id))
        )
    ).all()
    latest: dict[int, Consent] = {}
    for answer in answers:  # oldest first: the last one seen per topic is the one in force
        latest[answer.topic_id] = answer
    return [TopicConsent(topic=t, consent=latest.get(t.id or 0)) for t in topics]
