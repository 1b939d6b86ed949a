"""Builder functions for test data: each makes one thing with sensible defaults."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid

from sqlmodel.ext.asyncio.session import AsyncSession

from hub.auth.api_keys import issue_key
from hub.auth.passwords import hash_password
from hub.auth.sessions import SubjectKind, create_session
from hub.auth.totp import new_totp_secret
from hub.cases.service import open_case
from hub.db import Database, utcnow
from hub.events.service import Actor
from hub.models import (
    Agency,
    ApiKey,
    Case,
    DigitalAddress,
    Mandate,
    Party,
    ProcessingActivity,
    StaffMember,
)
from hub.parties.service import bsn_is_valid
from journeys.catalog import load_catalog

# Valid BSNs for the whole test session: about 9 in 100 numbers pass the eleven-test, so
# this range holds tens of millions (a range near 999999999 would run out, and then loop).
_bsns = (str(n) for n in itertools.count(200_000_000) if bsn_is_valid(str(n)))
_counter = itertools.count(1)

STAFF_PASSWORD = "correct horse battery"


def next_bsn() -> str:
    return next(_bsns)


async def make_agency(
    session: AsyncSession, code: str = "toeslagen", *, activities: tuple[str, ...] = ()
) -> Agency:
    agency = Agency(id=code, name=code.title(), opening_hours={})
    session.add(agency)
    for activity in activities:
        session.add(
            ProcessingActivity(
                agency_id=code, code=activity, purpose=f"{activity} purpose", legal_ground="law"
            )
        )
    await session.flush()
    return agency


async def make_party(
    session: AsyncSession,
    name: str | None = None,
    *,
    email: str | None = None,
    phone: str | None = None,
    verified: bool = True,
    language: str = "nl",
    preferred_channel: str = "portal",
    postal_address: str | None = None,
) -> Party:
    number = next(_counter)
    party = Party(
        bsn=next_bsn(),
        name=name or f"Citizen {number}",
        preferred_language=language,
        preferred_channel=preferred_channel,
        postal_address=postal_address,
    )
    session.add(party)
    await session.flush()
    for kind, value in (("email", email), ("phone", phone)):
        if value:
            session.add(
                DigitalAddress(
                    party_id=party.id,
                    kind=kind,
                    value=value,
                    verified_at=utcnow() if verified else None,
                )
            )
    await session.flush()
    return party


async def make_staff(
    session: AsyncSession,
    agency_id: str,
    *,
    email: str | None = None,
    name: str = "Sanne de Wit",
    role: str = "agent",
    password: str = STAFF_PASSWORD,
    totp: bool = True,
    active: bool = True,
) -> StaffMember:
    staff = StaffMember(
        agency_id=agency_id,
        email=email or f"staff{next(_counter)}@{agency_id}.test",
        display_name=name,
        role=role,
        password_hash=hash_password(password),
        totp_secret=new_totp_secret() if totp else None,
        active=active,
    )
    session.add(staff)
    await session.flush()
    return staff


async def make_mandate(
    session: AsyncSession,
    *,
    representative: Party,
    party: Party,
    journeys: list[str] | None = None,
    valid_until: dt.datetime | None = None,
    revoked: bool = False,
) -> Mandate:
    mandate = Mandate(
        representative_id=representative.id,
        party_id=party.id,
        all_journeys=journeys is None,
        journeys=journeys or [],
        valid_from=utcnow() - dt.timedelta(days=1),
        valid_until=valid_until,
        revoked_at=utcnow() if revoked else None,
    )
    session.add(mandate)
    await session.flush()
    return mandate


async def token_for(database: Database, kind: SubjectKind, subject_id: uuid.UUID) -> str:
    """A logged-in session token for a party ("citizen") or staff member ("staff")."""
    async with database.session() as session:
        _, token = await create_session(
            session,
            subject_kind=kind,
            subject_id=subject_id,
            identified_by="test",
            hours=1,
        )
    return token


async def make_key(
    session: AsyncSession, agency_id: str, *, name: str = "back office"
) -> tuple[ApiKey, str]:
    """An API key for the agency's system: the row, and the key itself."""
    return await issue_key(session, agency_id=agency_id, name=name)


async def key_for(database: Database, agency_id: str) -> str:
    async with database.session() as session:
        _, key = await issue_key(session, agency_id=agency_id, name="test system")
    return key


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def make_case(
    session: AsyncSession,
    party: Party,
    *,
    journey: str = "vraag",
    agency_id: str = "toeslagen",
    channel: str = "api",
) -> Case:
    """A case of ``journey`` for ``party`` (a general question at ``agency_id`` by default);
    the agency must exist (``make_agency``)."""
    return await open_case(
        session,
        catalog=load_catalog(),
        journey_id=journey,
        party=party,
        actor=Actor.system(),
        channel=channel,
        agency_id=agency_id,
    )
