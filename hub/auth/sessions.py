"""Login sessions: an opaque random token goes to the client; only its hash is stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from typing import Literal

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.db import utcnow
from hub.models import LoginSession

SubjectKind = Literal["citizen", "staff"]
# Longer than any token handed out (64 hex characters); anything longer is not looked up.
MAX_TOKEN_LENGTH = 200


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    # Hex, so a session token can never be mistaken for an API key ("hub_…").
    return secrets.token_hex(32)


async def create_session(
    session: AsyncSession,
    *,
    subject_kind: SubjectKind,
    subject_id: uuid.UUID,
    identified_by: str,
    hours: int,
) -> tuple[LoginSession, str]:
    """A new login session valid for ``hours``: the row, and the token to hand out once."""
    token = new_token()
    now = utcnow()
    login = LoginSession(
        token_hash=hash_token(token),
        subject_kind=subject_kind,
        subject_id=subject_id,
        identified_by=identified_by,
        created_at=now,
        expires_at=now + dt.timedelta(hours=hours),
    )
    session.add(login)
    await session.flush()
    return login, token


async def resolve_session(session: AsyncSession, token: str) -> LoginSession | None:
    """The live session for ``token``; None when unknown, expired or revoked."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    token_hash = hash_token(token)
    login = (
        await session.exec(select(LoginSession).where(LoginSession.token_hash == token_hash))
    ).first()
    # The lookup is by hash, so timing reveals nothing of the token; compare again to be plain.
    if login is None or not hmac.compare_digest(login.token_hash, token_hash):
        return None
    if login.revoked_at is not None or login.expires_at <= utcnow():
        return None
    return login


async def revoke_session(session: AsyncSession, login: LoginSession) -> LoginSession:
    """End the session now. Revoking an ended session changes nothing."""
    if login.revoked_at is None:
        login.revoked_at = utcnow()
        session.add(login)
        await session.flush()
    return login
