"""Citizen login with a one-time code sent to a verified email address or phone number.

Whether or not an address is known, the caller is told the same thing, and a refused code
gets the same answer whatever the reason, so neither reveals who has an account. The code
itself goes only into the outbox row that delivers it; only a keyed hash is stored.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import math
import re
import secrets
import uuid
from typing import Literal

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.auth.sessions import create_session
from hub.config import Settings
from hub.db import Database, utcnow
from hub.delivery.service import enqueue
from hub.errors import InvalidInput, NotAuthenticated, TooManyRequests
from hub.models import DigitalAddress, LoginCode, LoginSession, Party
from hub.parties.phones import e164_or_none

AddressKind = Literal["email", "phone"]

CODE_REQUEST_LIMIT = 5
CODE_REQUEST_WINDOW = dt.timedelta(minutes=15)
CODE_REFUSED = "The code is wrong or no longer valid. Ask for a new code."

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_MESSAGES = {
    "nl": (
        "Uw inlogcode",
        "Uw inlogcode voor de Interaction Hub is {code}. De code is {minutes} minuten geldig. "
        "Hebt u geen code gevraagd? Dan kunt u dit bericht negeren. Geef deze code aan niemand.",
    ),
    "en": (
        "Your login code",
        "Your Interaction Hub login code is {code}. It is valid for {minutes} minutes. "
        "If you did not ask for a code, you can ignore this message. Never share this code.",
    ),
}


class CodeRequestsExhausted(TooManyRequests):
    """Too many codes asked for one address; ``retry_after`` says in how many seconds to retry."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "Too many codes were asked for this address. Try again later.",
            retry_after=retry_after,
        )
        self.retry_after = retry_after


def normalise_address(raw: str) -> tuple[AddressKind, str]:
    """``("email", lower-cased)`` or ``("phone", E.164)``; InvalidInput for anything else."""
    value = raw.strip()
    if "@" in value:
        if not _EMAIL.match(value):
            raise InvalidInput("This is not an email address.")
        return "email", value.lower()
    phone = e164_or_none(value)
    if phone is None:
        raise InvalidInput("Give an email address, or a phone number such as +31612345678.")
    return "phone", phone


def _code_hash(settings: Settings, code_id: uuid.UUID, code: str) -> str:
    # Keyed and bound to its row: a leaked table does not give away the six digits.
    key = settings.secret_key.get_secret_value().encode()
    return hmac.new(key, f"{code_id}:{code}".encode(), hashlib.sha256).hexdigest()


async def _verified_address(
    session: AsyncSession, kind: AddressKind, value: str
) -> DigitalAddress | None:
    # An address verified by several parties logs in the first who verified it.
    query = (
        select(DigitalAddress)
        .where(
            DigitalAddress.kind == kind,
            DigitalAddress.value == value,
            col(DigitalAddress.verified_at).is_not(None),
        )
        .order_by(col(DigitalAddress.verified_at), col(DigitalAddress.created_at))
    )
    return (await session.exec(query)).first()


async def _check_request_rate(session: AsyncSession, address: DigitalAddress) -> None:
    now = utcnow()
    recent = (
        await session.exec(
            select(LoginCode.created_at)
            .where(
                LoginCode.address_id == address.id,
                col(LoginCode.created_at) > now - CODE_REQUEST_WINDOW,
            )
            .order_by(col(LoginCode.created_at))
        )
    ).all()
    if len(recent) >= CODE_REQUEST_LIMIT:
        frees_at = recent[len(recent) - CODE_REQUEST_LIMIT] + CODE_REQUEST_WINDOW
        raise CodeRequestsExhausted(max(1, math.ceil((frees_at - now).total_seconds())))


async def request_login_code(
    session: AsyncSession, *, email_or_phone: str, settings: Settings
) -> LoginCode | None:
    """Send a fresh six-digit code to the address if a party has verified it.

    Returns the code's row (None for an unknown or unverified address); callers must answer
    the same either way. Raises CodeRequestsExhausted after five requests in fifteen minutes.
    A new code replaces the address's earlier ones.
    """
    kind, value = normalise_address(email_or_phone)
    address = await _verified_address(session, kind, value)
    if address is None:
        return None
    await _check_request_rate(session, address)
    party = await session.get(Party, address.party_id)
    if party is None:
        return None
    code = f"{secrets.randbelow(1_000_000):06d}"
    now = utcnow()
    login_code = LoginCode(
        party_id=party.id,
        address_id=address.id,
        code_hash="",
        created_at=now,
        expires_at=now + dt.timedelta(minutes=settings.login_code_minutes),
    )
    login_code.code_hash = _code_hash(settings, login_code.id, code)
    session.add(login_code)
    language = party.preferred_language if party.preferred_language in _MESSAGES else "nl"
    subject, body = _MESSAGES[language]
    await enqueue(
        session,
        channel="email" if kind == "email" else "sms",
        recipient=address.value,
        template="login_code",
        subject=subject if kind == "email" else "",
        body=body.format(code=code, minutes=settings.login_code_minutes),
        language=language,
        party_id=party.id,
    )
    return login_code


async def send_login_code(database: Database, *, email_or_phone: str, settings: Settings) -> None:
    """:func:`request_login_code` in a transaction of its own, for after the answer has
    gone out: that answer then takes as long for an address the hub knows as for one it does
    not. A known address that already had its codes this quarter gets none, silently."""
    async with database.session() as session:
        with contextlib.suppress(CodeRequestsExhausted):
            await request_login_code(session, email_or_phone=email_or_phone, settings=settings)


async def verify_login_code(
    session: AsyncSession, *, email_or_phone: str, code: str, settings: Settings
) -> tuple[LoginSession, str]:
    """A citizen session for the party whose latest code for this address is ``code``.

    Only the latest code counts. A wrong code uses up one of ``settings.login_code_attempts``
    tries, after which the code is void; a used or expired code is refused. Every refusal is
    the same NotAuthenticated. The caller must commit even when this raises, so that a wrong
    try is counted.
    """
    kind, value = normalise_address(email_or_phone)
    address = await _verified_address(session, kind, value)
    if address is None:
        raise NotAuthenticated(CODE_REFUSED)
    latest = (
        await session.exec(
            select(LoginCode)
            .where(LoginCode.address_id == address.id)
            .order_by(col(LoginCode.created_at).desc())
            .limit(1)
            .with_for_update()  # concurrent guesses are counted one after the other
        )
    ).first()
    now = utcnow()
    if (
        latest is None
        or latest.used_at is not None
        or latest.expires_at <= now
        or latest.attempts >= settings.login_code_attempts
    ):
        raise NotAuthenticated(CODE_REFUSED)
    given = code.strip()
    if not hmac.compare_digest(latest.code_hash, _code_hash(settings, latest.id, given)):
        latest.attempts += 1
        session.add(latest)
        await session.flush()
        raise NotAuthenticated(CODE_REFUSED)
    latest.used_at = now
    session.add(latest)
    return await create_session(
        session,
        subject_kind="citizen",
        subject_id=latest.party_id,
        identified_by="otp",
        hours=settings.session_hours,
    )
