"""Agencies, their teams and staff, and their register of processing activities.

Services add and flush; the caller's session commits (see ``hub.db``). Bad input raises a
domain error from ``hub.errors`` whose message can be shown to the person who gave it.
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.auth.passwords import hash_password
from hub.auth.totp import new_totp_secret
from hub.errors import Conflict, InvalidInput, NotFound
from hub.messages.schemas import HEADER_BREAKERS
from hub.models import Agency, ProcessingActivity, StaffMember, Team, TeamMembership

Role = Literal["agent", "supervisor", "admin"]
ROLES: tuple[str, ...] = get_args(Role)

_CODE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 12


def _code(value: str, what: str, max_length: int) -> str:
    if not _CODE.fullmatch(value) or len(value) > max_length:
        raise InvalidInput(
            f"{what} {value!r} must be lower-case letters and digits, joined by - or _, "
            f"at most {max_length} characters (e.g. 'gemeente-utrecht')"
        )
    return value


def _text(value: str, what: str, max_length: int) -> str:
    value = value.strip()
    if not value:
        raise InvalidInput(f"{what} must not be empty")
    if len(value) > max_length:
        raise InvalidInput(f"{what} is longer than {max_length} characters")
    return value


async def get_agency(session: AsyncSession, agency_id: str) -> Agency:
    """The agency with this code; :class:`NotFound` when there is none."""
    agency = await session.get(Agency, agency_id)
    if agency is None:
        raise NotFound(f"no agency {agency_id!r}")
    return agency


async def list_agencies(session: AsyncSession) -> list[Agency]:
    return list((await session.exec(select(Agency).order_by(col(Agency.id)))).all())


async def create_agency(
    session: AsyncSession,
    *,
    code: str,
    name: str,
    opening_hours: dict[str, Any] | None = None,
) -> Agency:
    """Register an agency under a short code (its id, e.g. ``toeslagen``)."""
    code = _code(code, "agency code", 64)
    if await session.get(Agency, code) is not None:
        raise Conflict(f"agency {code!r} already exists")
    agency = Agency(
        id=code, name=_text(name, "agency name", 200), opening_hours=opening_hours or {}
    )
    session.add(agency)
    await session.flush()
    return agency


async def create_team(session: AsyncSession, *, agency_id: str, name: str) -> Team:
    """A team of the agency; its name is unique within the agency."""
    agency = await get_agency(session, agency_id)
    name = _text(name, "team name", 200)
    existing = (
        await session.exec(select(Team).where(Team.agency_id == agency.id, Team.name == name))
    ).first()
    if existing is not None:
        raise Conflict(f"agency {agency.id!r} already has a team {name!r}")
    team = Team(agency_id=agency.id, name=name)
    session.add(team)
    await session.flush()
    return team


async def create_staff(
    session: AsyncSession,
    *,
    agency_id: str,
    email: str,
    display_name: str,
    role: str = "agent",
    password: str | None = None,
    totp_secret: str | None = None,
) -> tuple[StaffMember, str]:
    """A staff member of the agency, and the TOTP secret for their authenticator app.

    The secret is returned so it can be shown once, to be entered in the app; staff log in
    with password and a TOTP code. Without a password the member cannot log in until one
    is set.
    """
    agency = await get_agency(session, agency_id)
    if HEADER_BREAKERS.search(display_name.strip()):
        raise InvalidInput("name must be one line, without control characters, written or encoded")
    email = email.strip().lower()
    if not _EMAIL.fullmatch(email) or len(email) > 320:
        raise InvalidInput(f"{email!r} is not an email address")
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    existing = (await session.exec(select(StaffMember).where(StaffMember.email == email))).first()
    if existing is not None:
        raise Conflict(f"a staff member with email {email!r} already exists")
    secret = totp_secret or new_totp_secret()
    staff = StaffMember(
        agency_id=agency.id,
        email=email,
        display_name=_text(display_name, "name", 200),
        role=role,
        password_hash=hash_password(password) if password is not None else None,
        totp_secret=secret,
    )
    session.add(staff)
    await session.flush()
    return staff, secret


async def add_to_team(session: AsyncSession, *, team_id: int, staff: StaffMember) -> None:
    """Make the staff member part of the team; both belong to the same agency."""
    team = await session.get(Team, team_id)
    if team is None or team.agency_id != staff.agency_id:
        raise NotFound(f"agency {staff.agency_id!r} has no team {team_id}")
    if await session.get(TeamMembership, (team_id, staff.id)) is None:
        session.add(TeamMembership(team_id=team_id, staff_id=staff.id))
        await session.flush()


async def add_processing_activity(
    session: AsyncSession,
    *,
    agency_id: str,
    code: str,
    purpose: str,
    legal_ground: str,
) -> ProcessingActivity:
    """An entry in the agency's register: what personal data is processed for, on what ground.

    Journeys name the activity their cases fall under by ``code``.
    """
    agency = await get_agency(session, agency_id)
    code = _code(code, "activity code", 100)
    existing = (
        await session.exec(
            select(ProcessingActivity).where(
                ProcessingActivity.agency_id == agency.id, ProcessingActivity.code == code
            )
        )
    ).first()
    if existing is not None:
        raise Conflict(f"agency {agency.id!r} already has a processing activity {code!r}")
    activity = ProcessingActivity(
        agency_id=agency.id,
        code=code,
        purpose=_text(purpose, "purpose", 500),
        legal_ground=_text(legal_ground, "legal ground", 500),
    )
    session.add(activity)
    await session.flush()
    return activity


async def list_processing_activities(
    session: AsyncSession, *, agency_id: str
) -> list[ProcessingActivity]:
    agency = await get_agency(session, agency_id)
    query = (
        select(ProcessingActivity)
        .where(ProcessingActivity.agency_id == agency.id)
        .order_by(col(ProcessingActivity.code))
    )
    return list((await session.exec(query)).all())
