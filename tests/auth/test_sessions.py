from __future__ import annotations

import datetime as dt
import uuid

from sqlmodel.ext.asyncio.session import AsyncSession

from hub.auth.sessions import create_session, hash_token, resolve_session, revoke_session
from hub.db import utcnow
from tests.builders import make_party


async def test_a_session_resolves_from_its_token(session: AsyncSession) -> None:
    party = await make_party(session)

    login, token = await create_session(
        session, subject_kind="citizen", subject_id=party.id, identified_by="otp", hours=8
    )

    assert login.token_hash == hash_token(token) and token not in login.token_hash
    assert login.expires_at - login.created_at == dt.timedelta(hours=8)
    resolved = await resolve_session(session, token)
    assert resolved is not None and resolved.id == login.id
    assert await resolve_session(session, token + "0") is None
    assert await resolve_session(session, "") is None


async def test_expired_and_revoked_sessions_resolve_to_nothing(session: AsyncSession) -> None:
    expired, expired_token = await create_session(
        session, subject_kind="staff", subject_id=uuid.uuid4(), identified_by="x", hours=1
    )
    expired.expires_at = utcnow() - dt.timedelta(seconds=1)
    session.add(expired)
    revoked, revoked_token = await create_session(
        session, subject_kind="staff", subject_id=uuid.uuid4(), identified_by="x", hours=1
    )

    await revoke_session(session, revoked)

    assert await resolve_session(session, expired_token) is None
    assert await resolve_session(session, revoked_token) is None
