"""The agency register: agencies, teams, staff and processing activities, on both backends."""

from __future__ import annotations

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.agencies.service import (
    add_processing_activity,
    add_to_team,
    create_agency,
    create_staff,
    create_team,
    get_agency,
    list_agencies,
    list_processing_activities,
)
from hub.auth.passwords import verify_password
from hub.errors import Conflict, InvalidInput, NotFound
from hub.models import TeamMembership


async def test_create_agency_and_find_it(session: AsyncSession) -> None:
    agency = await create_agency(session, code="toeslagen", name="Dienst Toeslagen")

    assert agency.id == "toeslagen"
    assert agency.opening_hours == {}
    assert await get_agency(session, "toeslagen") is agency
    assert [a.id for a in await list_agencies(session)] == ["toeslagen"]


async def test_agency_code_is_unique(session: AsyncSession) -> None:
    await create_agency(session, code="rdw", name="RDW")

    with pytest.raises(Conflict, match="agency 'rdw' already exists"):
        await create_agency(session, code="rdw", name="Another RDW")


@pytest.mark.parametrize("code", ["", "RDW", "gemeente utrecht", "-rdw", "a" * 65])
async def test_agency_code_must_be_a_slug(session: AsyncSession, code: str) -> None:
    with pytest.raises(InvalidInput, match="agency code"):
        await create_agency(session, code=code, name="Somebody")


async def test_unknown_agency_is_not_found(session: AsyncSession) -> None:
    with pytest.raises(NotFound, match="no agency 'nope'"):
        await create_team(session, agency_id="nope", name="Balie")


async def test_team_names_are_unique_per_agency(session: AsyncSession) -> None:
    await create_agency(session, code="uwv", name="UWV")
    await create_agency(session, code="kvk", name="KVK")
    await create_team(session, agency_id="uwv", name="Balie")
    await create_team(session, agency_id="kvk", name="Balie")

    with pytest.raises(Conflict, match="already has a team 'Balie'"):
        await create_team(session, agency_id="uwv", name="Balie")


async def test_create_staff_hashes_the_password_and_returns_the_totp_secret(
    session: AsyncSession,
) -> None:
    await create_agency(session, code="uwv", name="UWV")

    staff, secret = await create_staff(
        session,
        agency_id="uwv",
        email=" Anna@UWV.example ",
        display_name="Anna de Vries",
        role="supervisor",
        password="correct horse battery",
    )

    assert staff.email == "anna@uwv.example"
    assert staff.totp_secret == secret
    assert staff.password_hash is not None
    assert "correct horse" not in staff.password_hash
    assert verify_password(staff.password_hash, "correct horse battery")


async def test_staff_email_is_unique_across_agencies(session: AsyncSession) -> None:
    await create_agency(session, code="uwv", name="UWV")
    await create_agency(session, code="kvk", name="KVK")
    await create_staff(session, agency_id="uwv", email="a@gov.example", display_name="A")

    with pytest.raises(Conflict, match="already exists"):
        await create_staff(session, agency_id="kvk", email="A@gov.example", display_name="A")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": "not-an-address"}, "is not an email address"),
        ({"role": "boss"}, "role 'boss' is not one of agent, supervisor, admin"),
        ({"password": "short"}, "at least 12 characters"),
        ({"display_name": "  "}, "name must not be empty"),
    ],
)
async def test_create_staff_refuses_bad_input(
    session: AsyncSession, fields: dict[str, str], message: str
) -> None:
    await create_agency(session, code="uwv", name="UWV")
    arguments = {"email": "b@uwv.example", "display_name": "B", **fields}

    with pytest.raises(InvalidInput, match=message):
        await create_staff(session, agency_id="uwv", **arguments)


async def test_add_to_team_is_idempotent_and_stays_within_the_agency(
    session: AsyncSession,
) -> None:
    await create_agency(session, code="uwv", name="UWV")
    await create_agency(session, code="kvk", name="KVK")
    team = await create_team(session, agency_id="uwv", name="Balie")
    other = await create_team(session, agency_id="kvk", name="Balie")
    staff, _ = await create_staff(session, agency_id="uwv", email="c@uwv.example", display_name="C")
    assert team.id is not None and other.id is not None

    await add_to_team(session, team_id=team.id, staff=staff)
    await add_to_team(session, team_id=team.id, staff=staff)

    assert await session.get(TeamMembership, (team.id, staff.id)) is not None
    with pytest.raises(NotFound):
        await add_to_team(session, team_id=other.id, staff=staff)


async def test_processing_activities_are_registered_per_agency(session: AsyncSession) -> None:
    await create_agency(session, code="gemeente-utrecht", name="Gemeente Utrecht")
    await add_processing_activity(
        session,
        agency_id="gemeente-utrecht",
        code="parkeren",
        purpose="Parkeervergunningen verlenen",
        legal_ground="Art. 6(1)(e) AVG; Parkeerverordening Utrecht",
    )
    await add_processing_activity(
        session,
        agency_id="gemeente-utrecht",
        code="omgevingsvergunning",
        purpose="Omgevingsvergunningen beoordelen",
        legal_ground="Art. 6(1)(e) AVG; Omgevingswet",
    )

    activities = await list_processing_activities(session, agency_id="gemeente-utrecht")

    assert [a.code for a in activities] == ["omgevingsvergunning", "parkeren"]
    with pytest.raises(Conflict, match="already has a processing activity 'parkeren'"):
        await add_processing_activity(
            session, agency_id="gemeente-utrecht", code="parkeren", purpose="x", legal_ground="y"
        )
    with pytest.raises(InvalidInput, match="legal ground must not be empty"):
        await add_processing_activity(
            session, agency_id="gemeente-utrecht", code="afval", purpose="x", legal_ground=" "
        )
