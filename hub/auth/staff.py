"""Staff login: email, password and a TOTP code. Staff without a second factor cannot log in."""

from __future__ import annotations

import asyncio

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.auth.passwords import DUMMY_HASH, hash_password, needs_rehash, verify_password
from hub.auth.sessions import create_session
from hub.auth.totp import verify_totp
from hub.errors import NotAuthenticated
from hub.models import LoginSession, StaffMember

LOGIN_REFUSED = "Email, password or code is wrong."
DEFAULT_SESSION_HOURS = 8


async def login_staff(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    totp_code: str,
    hours: int = DEFAULT_SESSION_HOURS,
) -> tuple[LoginSession, str]:
    """A staff session when all three factors match an active staff member with a TOTP secret.

    Every refusal — unknown email, inactive, wrong password, no or wrong TOTP — is the same
    NotAuthenticated, and an unknown email costs as much time as a known one.
    """
    staff = (
        await session.exec(
            select(StaffMember).where(func.lower(col(StaffMember.email)) == email.strip().lower())
        )
    ).first()
    stored_hash = staff.password_hash if staff and staff.password_hash else DUMMY_HASH
    # argon2 is deliberately slow: keep it off the event loop.
    password_ok = await asyncio.to_thread(verify_password, stored_hash, password)
    if (
        staff is None
        or not staff.active
        or not staff.password_hash
        or not password_ok
        or not staff.totp_secret
        or not verify_totp(staff.totp_secret, totp_code)
    ):
        raise NotAuthenticated(LOGIN_REFUSED)
    if needs_rehash(staff.password_hash):
        staff.password_hash = await asyncio.to_thread(hash_password, password)
        session.add(staff)
    return await create_session(
        session,
        subject_kind="staff",
        subject_id=staff.id,
        identified_by="password+totp",
        hours=hours,
    )
