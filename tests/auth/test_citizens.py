from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.auth.citizens import (
    CODE_REFUSED,
    CodeRequestsExhausted,
    normalise_address,
    request_login_code,
    verify_login_code,
)
from hub.auth.sessions import resolve_session
from hub.config import Settings
from hub.db import utcnow
from hub.errors import InvalidInput, NotAuthenticated
from hub.models import LoginCode, OutboxItem
from tests.builders import make_party


async def sent_codes(session: AsyncSession, recipient: str) -> list[OutboxItem]:
    query = (
        select(OutboxItem)
        .where(OutboxItem.recipient == recipient, OutboxItem.template == "login_code")
        .order_by(col(OutboxItem.created_at))
    )
    return list((await session.exec(query)).all())


async def last_code(session: AsyncSession, recipient: str) -> str:
    items = await sent_codes(session, recipient)
    match = re.search(r"\b(\d{6})\b", items[-1].body)
    assert match is not None
    return match.group(1)


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Jan@Example.NL ", ("email", "jan@example.nl")),
        ("+31 6 1234 5678", ("phone", "+31612345678")),
        ("+31612345678", ("phone", "+31612345678")),
        # Written the Dutch way: read in the default region.
        ("06-12345678", ("phone", "+31612345678")),
    ],
)
def test_addresses_are_normalised(raw: str, expected: tuple[str, str]) -> None:
    assert normalise_address(raw) == expected


@pytest.mark.parametrize("raw", ["", "jan", "06-123", "+999 1234", "jan@", "@x.nl"])
def test_other_input_is_refused(raw: str) -> None:
    with pytest.raises(InvalidInput):
        normalise_address(raw)


async def test_code_by_email_logs_the_party_in(session: AsyncSession, settings: Settings) -> None:
    party = await make_party(session, email="jan@example.nl")

    row = await request_login_code(session, email_or_phone="JAN@example.nl", settings=settings)

    assert row is not None
    [item] = await sent_codes(session, "jan@example.nl")
    assert item.channel == "email" and item.party_id == party.id and item.language == "nl"
    assert "inlogcode" in item.body
    code = await last_code(session, "jan@example.nl")
    assert code not in row.code_hash
    login, token = await verify_login_code(
        session, email_or_phone="jan@example.nl", code=code, settings=settings
    )
    assert login.subject_kind == "citizen" and login.subject_id == party.id
    assert login.identified_by == "otp"
    assert (await resolve_session(session, token)) is not None
    assert row.used_at is not None


async def test_code_by_sms_in_english(session: AsyncSession, settings: Settings) -> None:
    await make_party(session, phone="+31612345678", language="en")

    await request_login_code(session, email_or_phone="+31 6 12345678", settings=settings)

    [item] = await sent_codes(session, "+31612345678")
    assert item.channel == "sms" and item.language == "en"
    assert "login code" in item.body
    code = await last_code(session, "+31612345678")
    await verify_login_code(session, email_or_phone="+31612345678", code=code, settings=settings)


async def test_unknown_or_unverified_addresses_get_no_code(
    session: AsyncSession, settings: Settings
) -> None:
    await make_party(session, email="unverified@example.nl", verified=False)

    assert (
        await request_login_code(session, email_or_phone="nobody@x.nl", settings=settings) is None
    )
    assert (
        await request_login_code(session, email_or_phone="unverified@example.nl", settings=settings)
        is None
    )
    assert (await session.exec(select(OutboxItem))).all() == []
    with pytest.raises(NotAuthenticated, match=re.escape(CODE_REFUSED)):
        await verify_login_code(
            session, email_or_phone="nobody@x.nl", code="123456", settings=settings
        )


async def test_wrong_codes_count_until_the_code_is_void(
    session: AsyncSession, settings: Settings
) -> None:
    await make_party(session, email="jan@example.nl")
    row = await request_login_code(session, email_or_phone="jan@example.nl", settings=settings)
    assert row is not None
    code = await last_code(session, "jan@example.nl")

    for attempt in range(1, settings.login_code_attempts + 1):
        with pytest.raises(NotAuthenticated, match=re.escape(CODE_REFUSED)):
            await verify_login_code(
                session, email_or_phone="jan@example.nl", code=other_code(code), settings=settings
            )
        assert row.attempts == attempt

    with pytest.raises(NotAuthenticated, match=re.escape(CODE_REFUSED)):
        await verify_login_code(
            session, email_or_phone="jan@example.nl", code=code, settings=settings
        )
    assert row.used_at is None


async def test_a_code_works_once(session: AsyncSession, settings: Settings) -> None:
    await make_party(session, email="jan@example.nl")
    await request_login_code(session, email_or_phone="jan@example.nl", settings=settings)
    code = await last_code(session, "jan@example.nl")
    await verify_login_code(session, email_or_phone="jan@example.nl", code=code, settings=settings)

    with pytest.raises(NotAuthenticated):
        await verify_login_code(
            session, email_or_phone="jan@example.nl", code=code, settings=settings
        )


async def test_an_expired_code_is_refused(session: AsyncSession, settings: Settings) -> None:
    await make_party(session, email="jan@example.nl")
    row = await request_login_code(session, email_or_phone="jan@example.nl", settings=settings)
    assert row is not None
    assert row.expires_at - row.created_at == dt.timedelta(minutes=settings.login_code_minutes)
    code = await last_code(session, "jan@example.nl")
    row.expires_at = utcnow() - dt.timedelta(seconds=1)
    session.add(row)

    with pytest.raises(NotAuthenticated):
        await verify_login_code(
            session, email_or_phone="jan@example.nl", code=code, settings=settings
        )


async def test_a_new_code_replaces_the_old(session: AsyncSession, settings: Settings) -> None:
    await make_party(session, email="jan@example.nl")
    await request_login_code(session, email_or_phone="jan@example.nl", settings=settings)
    first = await last_code(session, "jan@example.nl")
    await request_login_code(session, email_or_phone="jan@example.nl", settings=settings)
    second = await last_code(session, "jan@example.nl")

    if first != second:
        with pytest.raises(NotAuthenticated):
            await verify_login_code(
                session, email_or_phone="jan@example.nl", code=first, settings=settings
            )
    await verify_login_code(
        session, email_or_phone="jan@example.nl", code=second, settings=settings
    )


async def test_five_requests_per_quarter_hour(session: AsyncSession, settings: Settings) -> None:
    await make_party(session, email="jan@example.nl")
    for _ in range(5):
        await request_login_code(session, email_or_phone="jan@example.nl", settings=settings)

    with pytest.raises(CodeRequestsExhausted) as refused:
        await request_login_code(session, email_or_phone="jan@example.nl", settings=settings)

    assert 0 < refused.value.retry_after <= 15 * 60
    assert len(await sent_codes(session, "jan@example.nl")) == 5
    # Requests older than the window no longer count.
    for row in (await session.exec(select(LoginCode))).all():
        row.created_at = utcnow() - dt.timedelta(minutes=16)
        session.add(row)
    await request_login_code(session, email_or_phone="jan@example.nl", settings=settings)
