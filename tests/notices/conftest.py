"""The notices world: two agencies, each with a consent topic under its own processing
activity and templates for it, and helpers to post notices at a chosen local time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.db import Database
from hub.models import Agency, ConsentTopic, Party
from hub.notices.consent import record_consent, register_topic
from hub.notices.service import NoticeRequest, Routed, route_notice, save_template
from tests.builders import key_for, make_agency

TIMEZONE = "Europe/Amsterdam"
BASE_URL = "http://hub.test"

TEMPLATES = {
    ("portal", "nl"): (
        "Recht op {{ allowance }}",
        "Beste {{ party_name }}, u heeft mogelijk recht op {{ allowance }} vanaf {{ start }}.",
    ),
    ("portal", "en"): (
        "Right to {{ allowance }}",
        "Dear {{ party_name }}, you may be entitled to {{ allowance }} from {{ start }}.",
    ),
    ("email", "nl"): (
        "Mogelijk recht op {{ allowance }}",
        "U heeft mogelijk recht op {{ allowance }} vanaf {{ start }}. Kijk op toeslagen.example.",
    ),
    ("sms", "nl"): ("", "Toeslagen: mogelijk recht op {{ allowance }} vanaf {{ start }}."),
}


def local(hour: int, minute: int = 0, day: int = 2) -> dt.datetime:
    """A moment on 2 March 2026 (or ``day``) at the given Amsterdam time, in UTC."""
    moment = dt.datetime(2026, 3, day, hour, minute, tzinfo=ZoneInfo(TIMEZONE))
    return moment.astimezone(dt.UTC)


@dataclass
class World:
    toeslagen: Agency
    rdw: Agency
    topic: ConsentTopic
    rdw_topic: ConsentTopic


async def build_world(session: AsyncSession) -> World:
    toeslagen = await make_agency(session, "toeslagen", activities=("proactive_info",))
    rdw = await make_agency(session, "rdw", activities=("reminders",))
    topic = await register_topic(
        session,
        agency_id="toeslagen",
        code="allowances",
        title={"nl": "Toeslagen waar u recht op heeft", "en": "Allowances you may get"},
        activity_code="proactive_info",
    )
    rdw_topic = await register_topic(
        session,
        agency_id="rdw",
        code="licence_expiry",
        title={"nl": "Rijbewijs verloopt", "en": "Driving licence expires"},
        activity_code="reminders",
    )
    for (channel, language), (subject, body) in TEMPLATES.items():
        await save_template(
            session,
            agency_id="toeslagen",
            code="rent",
            channel=channel,
            language=language,
            subject=subject,
            body=body,
        )
    await session.flush()
    return World(toeslagen=toeslagen, rdw=rdw, topic=topic, rdw_topic=rdw_topic)


@pytest.fixture
async def world(database: Database) -> World:
    async with database.session() as session:
        built = await build_world(session)
    return built


@pytest.fixture
async def toeslagen_key(database: Database, world: World) -> str:
    return await key_for(database, "toeslagen")


@pytest.fixture
async def rdw_key(database: Database, world: World) -> str:
    return await key_for(database, "rdw")


async def consent(session: AsyncSession, party: Party, topic: ConsentTopic, granted: bool) -> None:
    await record_consent(
        session,
        party_id=party.id,
        topic=topic,
        granted=granted,
        recorded_by_kind="citizen",
        recorded_by_id=str(party.id),
        source="portal",
    )


PERSONALISATION = {"allowance": "huurtoeslag", "start": "1 april"}


async def notify(
    session: AsyncSession,
    world: World,
    party: Party,
    *,
    at: dt.datetime | None = None,
    personalisation: dict[str, Any] | None = None,
    **extra: Any,
) -> Routed:
    """Route a rent notice from Toeslagen to ``party`` at ``at`` (noon by default)."""
    request = NoticeRequest(
        agency=world.toeslagen,
        party=party,
        topic=world.topic,
        template_code="rent",
        personalisation=PERSONALISATION if personalisation is None else personalisation,
        **extra,
    )
    return await route_notice(
        session, request, timezone=TIMEZONE, base_url=BASE_URL, now=at or local(12)
    )
