"""Parties: finding or creating a citizen or business by identifier, and their addresses."""

from __future__ import annotations

import re
import uuid

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.db import utcnow
from hub.errors import InvalidInput, NotFound
from hub.messages.schemas import HEADER_BREAKERS, checked_line
from hub.models import DigitalAddress, Party
from hub.parties.phones import to_e164

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def bsn_is_valid(bsn: str) -> bool:
    """The BSN eleven-test: 9 digits, weighted sum (9..2, and -1 for the last) divisible by 11."""
    if len(bsn) != 9 or not (bsn.isascii() and bsn.isdigit()):
        return False
    d = [ord(digit) - 48 for digit in bsn]  # a bulk job checks a million: kept plain
    total = 9 * d[0] + 8 * d[1] + 7 * d[2] + 6 * d[3] + 5 * d[4] + 4 * d[5] + 3 * d[6]
    total += 2 * d[7] - d[8]
    return total % 11 == 0 and bsn != "000000000"


def kvk_is_valid(kvk: str) -> bool:
    return len(kvk) == 8 and kvk.isdigit()


def check_identifier(*, bsn: str | None, kvk_number: str | None) -> None:
    if (bsn is None) == (kvk_number is None):
        raise InvalidInput("Give exactly one identifier: a BSN for a person or a KvK number.")
    if bsn is not None and not bsn_is_valid(bsn):
        raise InvalidInput("This BSN is not valid: it must be 9 digits and pass the eleven-test.")
    if kvk_number is not None and not kvk_is_valid(kvk_number):
        raise InvalidInput("This KvK number is not valid: it must be 8 digits.")


async def find_party(
    session: AsyncSession, *, bsn: str | None = None, kvk_number: str | None = None
) -> Party | None:
    check_identifier(bsn=bsn, kvk_number=kvk_number)
    query = select(Party).where(
        Party.bsn == bsn if bsn is not None else Party.kvk_number == kvk_number
    )
    return (await session.exec(query)).first()


async def find_or_create_party(
    session: AsyncSession,
    *,
    name: str,
    bsn: str | None = None,
    kvk_number: str | None = None,
    email: str | None = None,
    phone: str | None = None,
) -> Party:
    """The party with this identifier, created when the hub does not know it yet.

    Addresses given by an agency system are recorded as verified: the agency vouches for them.
    """
    # The name and address end up in the To header of the mail the party is sent.
    name = checked_line(name, what="party's name", limit=300)
    if email is not None and (HEADER_BREAKERS.search(email) or not _EMAIL.match(email.strip())):
        raise InvalidInput("The party's email is not an email address.")
    party = await find_party(session, bsn=bsn, kvk_number=kvk_number)
    if party is None:
        party = Party(
            kind="person" if bsn else "business", bsn=bsn, kvk_number=kvk_number, name=name
        )
        session.add(party)
        await session.flush()
    if email:
        await add_address(session, party_id=party.id, kind="email", value=email, verified=True)
    if phone:
        await add_address(session, party_id=party.id, kind="phone", value=phone, verified=True)
    return party


async def add_address(
    session: AsyncSession, *, party_id: uuid.UUID, kind: str, value: str, verified: bool
) -> DigitalAddress:
    value = value.strip().lower() if kind == "email" else to_e164(value)
    existing = (
        await session.exec(
            select(DigitalAddress).where(
                DigitalAddress.party_id == party_id,
                DigitalAddress.kind == kind,
                DigitalAddress.value == value,
            )
        )
    ).first()
    if existing is not None:
        if verified and existing.verified_at is None:
            existing.verified_at = utcnow()
        return existing
    address = DigitalAddress(
        party_id=party_id, kind=kind, value=value, verified_at=utcnow() if verified else None
    )
    session.add(address)
    await session.flush()
    return address


async def verified_address(session: AsyncSession, party_id: uuid.UUID, kind: str) -> str | None:
    rows = (
        await session.exec(
            select(DigitalAddress)
            .where(
                DigitalAddress.party_id == party_id,
                DigitalAddress.kind == kind,
                col(DigitalAddress.verified_at).is_not(None),
            )
            .order_by(col(DigitalAddress.created_at))
        )
    ).all()
    return rows[0].value if rows else None


async def get_party(session: AsyncSession, party_id: uuid.UUID) -> Party:
    party = await session.get(Party, party_id)
    if party is None:
        raise NotFound("No such party.")
    return party


async def party_addresses(session: AsyncSession, party_id: uuid.UUID) -> list[DigitalAddress]:
    query = select(DigitalAddress).where(DigitalAddress.party_id == party_id)
    return list((await session.exec(query)).all())
