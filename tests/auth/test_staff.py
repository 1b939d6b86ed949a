from __future__ import annotations

import re

import pyotp
import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.auth.staff import LOGIN_REFUSED, login_staff
from hub.errors import NotAuthenticated
from hub.models import StaffMember
from tests.builders import STAFF_PASSWORD, make_agency, make_staff


def current_code(staff: StaffMember) -> str:
    assert staff.totp_secret is not None
    return pyotp.TOTP(staff.totp_secret).now()


def wrong_code(staff: StaffMember) -> str:
    return f"{(int(current_code(staff)) + 500_000) % 1_000_000:06d}"


async def test_password_and_totp_log_staff_in(session: AsyncSession) -> None:
    await make_agency(session)
    staff = await make_staff(session, "toeslagen", email="fatima@toeslagen.example")

    login, token = await login_staff(
        session,
        email="Fatima@Toeslagen.example",
        password=STAFF_PASSWORD,
        totp_code=current_code(staff),
    )

    assert login.subject_kind == "staff" and login.subject_id == staff.id
    assert login.identified_by == "password+totp" and token


@pytest.mark.parametrize("case", ["wrong totp", "wrong password", "unknown email", "inactive"])
async def test_every_refusal_looks_the_same(session: AsyncSession, case: str) -> None:
    await make_agency(session)
    staff = await make_staff(
        session, "toeslagen", email="fatima@toeslagen.example", active=case != "inactive"
    )
    email = "nobody@toeslagen.example" if case == "unknown email" else staff.email
    password = "wrong" if case == "wrong password" else STAFF_PASSWORD
    code = wrong_code(staff) if case == "wrong totp" else current_code(staff)

    with pytest.raises(NotAuthenticated, match=re.escape(LOGIN_REFUSED)):
        await login_staff(session, email=email, password=password, totp_code=code)


async def test_staff_without_a_second_factor_cannot_log_in(session: AsyncSession) -> None:
    await make_agency(session)
    staff = await make_staff(session, "toeslagen", totp=False)

    with pytest.raises(NotAuthenticated, match=re.escape(LOGIN_REFUSED)):
        await login_staff(session, email=staff.email, password=STAFF_PASSWORD, totp_code="000000")
