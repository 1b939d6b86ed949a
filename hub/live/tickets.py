"""Websocket tickets: short-lived, single-use stand-ins for a login session.

A browser cannot set an ``Authorization`` header on a websocket, and a URL's query string
ends up in logs, so the page first trades its session for a ticket over an ordinary request
and hands the ticket over on the socket. The ticket names the login session, an expiry and a
random nonce, signed with a key derived from ``HUB_SECRET_KEY``; redeeming it claims the nonce
through the broker, so it works once — in any process when the broker is Redis.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import Executable, bindparam, exists, or_
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.access.service import Viewer, visible_agency_filter
from hub.auth.dependencies import viewer_for_session
from hub.db import utcnow
from hub.events.fanout import Broker
from hub.models import Case, LoginSession, StaffMember

_PURPOSE = b"interaction-hub live websocket ticket v1"
_RAW_LENGTH = 16 + 8 + 16  # session id, expiry, nonce
_MAC_LENGTH = 32
TICKET_LENGTH = 96  # base64url of 72 bytes, no padding
TICKET_PROTOCOL_PREFIX = "hub.ticket."


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()


def issue_ticket(secret: str, session_id: uuid.UUID, seconds: int) -> str:
    """A ticket for the login session, valid for ``seconds``."""
    expires = int(time.time()) + seconds
    raw = session_id.bytes + expires.to_bytes(8, "big") + secrets.token_bytes(16)
    mac = hmac.new(_key(secret), raw, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(raw + mac).decode().rstrip("=")


@dataclass(frozen=True)
class Ticket:
    session_id: uuid.UUID
    expires: int
    nonce: str


def read_ticket(secret: str, ticket: str, *, now: float | None = None) -> Ticket | None:
    """The ticket's contents if it is well formed, signed by us and not expired."""
    if len(ticket) != TICKET_LENGTH or not ticket.isascii():
        return None
    try:
        data = base64.urlsafe_b64decode(ticket + "==")
    except ValueError:
        return None
    raw, mac = data[:_RAW_LENGTH], data[_RAW_LENGTH:]
    expected = hmac.new(_key(secret), raw, hashlib.sha256).digest()
    if len(mac) != _MAC_LENGTH or not hmac.compare_digest(mac, expected):
        return None
    expires = int.from_bytes(raw[16:24], "big")
    if expires <= (time.time() if now is None else now):
        return None
    return Ticket(uuid.UUID(bytes=raw[:16]), expires, raw[24:].hex())


async def burn_ticket(secret: str, ticket: str, broker: Broker) -> None:
    """Make a ticket unusable (it was seen where it should not have been)."""
    found = read_ticket(secret, ticket)
    if found is not None:
        await broker.claim_once(f"ticket:{found.nonce}", found.expires - time.time())


async def redeem_ticket(
    session: AsyncSession, secret: str, ticket: str, broker: Broker
) -> tuple[Viewer, uuid.UUID] | None:
    """The viewer and login session the ticket stands for, once; None when the ticket is not
    valid, expired, used before, or its session has ended."""
    found = read_ticket(secret, ticket)
    if found is None:
        return None
    if not await broker.claim_once(f"ticket:{found.nonce}", found.expires - time.time()):
        return None
    viewer = await session_viewer(session, found.session_id)
    return (viewer, found.session_id) if viewer is not None else None


# Built once: these are asked before every delivery and every chat line, and building and
# keying a statement costs more than running it.
_SESSION_STATE = (
    select(LoginSession.revoked_at, LoginSession.expires_at, StaffMember.active)
    .select_from(LoginSession)
    .outerjoin(StaffMember, col(StaffMember.id) == col(LoginSession.subject_id))
    .where(col(LoginSession.id) == bindparam("session_id"))
)
_SESSION_STATE_AND_AGENCY_SEES_CASE = _SESSION_STATE.add_columns(
    exists().where(
        col(Case.id) == bindparam("case_id"),
        visible_agency_filter(bindparam("agency_id")),  # type: ignore[arg-type]
    )
)


async def session_is_live(
    db: AsyncSession | AsyncConnection,
    session_id: uuid.UUID,
    *,
    agency_sees: tuple[str, uuid.UUID] | None = None,
) -> bool:
    """Whether the login session is still live (not revoked, not expired, its staff member
    active) — and with ``agency_sees=(agency_id, case_id)`` whether that agency still sees
    the case — in one query: asked before every delivery, so it must be cheap."""
    connection = await db.connection() if isinstance(db, AsyncSession) else db
    query: Executable = _SESSION_STATE
    params: dict[str, object] = {"session_id": session_id}
    if agency_sees is not None:
        query = _SESSION_STATE_AND_AGENCY_SEES_CASE
        params.update(agency_id=agency_sees[0], case_id=agency_sees[1])
    row = (await connection.execute(query, params)).first()
    if row is None:
        return False
    revoked_at, expires_at, staff_active, *sees = row
    return revoked_at is None and expires_at > utcnow() and staff_active is not False and all(sees)


async def live_sessions(
    connection: AsyncConnection, session_ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    """Those of the login sessions that are still live (as :func:`session_is_live` has it),
    in one query per thousand: the check of every open socket of a process at once."""
    found: set[uuid.UUID] = set()
    now = utcnow()
    for start in range(0, len(session_ids), 1000):
        query = (
            select(LoginSession.id)
            .select_from(LoginSession)
            .outerjoin(StaffMember, col(StaffMember.id) == col(LoginSession.subject_id))
            .where(
                col(LoginSession.id).in_(session_ids[start : start + 1000]),
                col(LoginSession.revoked_at).is_(None),
                col(LoginSession.expires_at) > now,
                or_(col(StaffMember.active).is_(None), col(StaffMember.active)),
            )
        )
        found.update((await connection.execute(query)).scalars())
    return found


async def session_viewer(session: AsyncSession, session_id: uuid.UUID) -> Viewer | None:
    """The viewer of a login session that is still live (not revoked, not expired, its
    subject active); None otherwise."""
    login = await session.get(LoginSession, session_id, populate_existing=True)
    if login is None or login.revoked_at is not None or login.expires_at <= utcnow():
        return None
    return await viewer_for_session(session, login)
