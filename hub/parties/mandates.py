"""Mandates: a party lets a representative act for them, for all journeys or chosen ones,
from one day until another; either of the two can end it.

The representative is named by BSN and name together, as DigiD Machtigen does: a BSN alone
could be mistyped into a stranger's. The answer is the same whether the BSN is unknown or
the name does not match, so the form cannot be used to find out whose BSN a number is.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Literal

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.access.service import represented_parties
from hub.clock import local_date, local_today, start_of_local_day
from hub.db import utcnow
from hub.errors import InvalidInput, NotFound
from hub.models import Mandate, Party
from hub.parties.service import bsn_is_valid
from journeys.catalog import Catalog

MandateState = Literal["active", "upcoming", "ended", "revoked"]
Refusal = Literal[
    "bsn_invalid",
    "no_match",
    "yourself",
    "no_journeys",
    "unknown_journey",
    "starts_in_the_past",
    "ends_before_it_starts",
]

REFUSALS: dict[Refusal, str] = {
    "bsn_invalid": "This BSN is not valid: it must be 9 digits and pass the eleven-test.",
    "no_match": "We cannot find a person with this BSN and this name. Check both.",
    "yourself": "You cannot give a mandate to yourself.",
    "no_journeys": "Choose at least one kind of case, or all of them.",
    "unknown_journey": "One of the chosen kinds of case does not exist.",
    "starts_in_the_past": "A mandate cannot start before today.",
    "ends_before_it_starts": "The end date must be on or after the start date.",
}


class MandateRefused(InvalidInput):
    """A mandate that cannot be given; ``reason`` says why (the pages translate it)."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(REFUSALS[reason], reason=reason)
        self.reason: Refusal = reason


@dataclass(frozen=True)
class MandateView:
    """A mandate with the other party's name and whether it is in force now."""

    mandate: Mandate
    other: Party
    state: MandateState


def same_name(given: str, known: str) -> bool:
    """Names compared as people type them: case, accents and spacing do not count."""

    def plain(name: str) -> str:
        decomposed = unicodedata.normalize("NFKD", name)
        letters = "".join(c for c in decomposed if not unicodedata.combining(c))
        return " ".join(letters.casefold().replace("-", " ").split())

    return bool(plain(given)) and plain(given) == plain(known)


def state_of(mandate: Mandate, now: dt.datetime) -> MandateState:
    if mandate.revoked_at is not None and mandate.revoked_at <= now:
        return "revoked"
    if mandate.valid_until is not None and mandate.valid_until <= now:
        return "ended"
    if mandate.valid_from > now:
        return "upcoming"
    return "active"


def last_day(mandate: Mandate, timezone: str) -> dt.date | None:
    """The last local day the mandate is valid (its end is the start of the next day)."""
    if mandate.valid_until is None:
        return None
    return local_date(mandate.valid_until - dt.timedelta(microseconds=1), timezone)


async def grant_mandate(
    session: AsyncSession,
    *,
    party: Party,
    representative_bsn: str,
    representative_name: str,
    journeys: list[str] | None,
    valid_from: dt.date | None,
    valid_until: dt.date | None,
    catalog: Catalog,
    timezone: str,
) -> Mandate:
    """Let the person with this BSN and name act for ``party``: for every journey
    (``journeys`` None) or the listed ones, from the start of ``valid_from`` (today when
    None) through the whole of ``valid_until`` (no end when None), local days."""
    bsn = "".join(representative_bsn.split())
    if not bsn_is_valid(bsn):
        raise MandateRefused("bsn_invalid")
    representative = (await session.exec(select(Party).where(Party.bsn == bsn))).first()
    if representative is None or not same_name(representative_name, representative.name):
        raise MandateRefused("no_match")
    if representative.id == party.id:
        raise MandateRefused("yourself")
    if journeys is not None:
        journeys = list(dict.fromkeys(journeys))
        if not journeys:
            raise MandateRefused("no_journeys")
        known = {definition.id for definition in catalog.all()}
        if any(journey not in known for journey in journeys):
            raise MandateRefused("unknown_journey")
    today = local_today(timezone)
    first = valid_from or today
    if first < today:
        raise MandateRefused("starts_in_the_past")
    if valid_until is not None and valid_until < first:
        raise MandateRefused("ends_before_it_starts")
    now = utcnow()
    mandate = Mandate(
        representative_id=representative.id,
        party_id=party.id,
        all_journeys=journeys is None,
        journeys=journeys or [],
        # Today's mandate holds from now; a later one from the start of its first day.
        valid_from=now if first == today else start_of_local_day(first, timezone),
        valid_until=(
            start_of_local_day(valid_until + dt.timedelta(days=1), timezone)
            if valid_until is not None
            else None
        ),
        created_at=now,
    )
    session.add(mandate)
    await session.flush()
    return mandate


async def revoke_mandate(
    session: AsyncSession, *, mandate_id: uuid.UUID, by_party_id: uuid.UUID
) -> Mandate:
    """End the mandate now; the party who gave it and the representative may. It stops at
    once: every check of a mandate reads ``revoked_at``. Revoking twice keeps the first."""
    mandate = await session.get(Mandate, mandate_id, with_for_update=True)
    if mandate is None or by_party_id not in (mandate.party_id, mandate.representative_id):
        raise NotFound("No such mandate.")
    if mandate.revoked_at is None:
        mandate.revoked_at = utcnow()
        session.add(mandate)
        await session.flush()
    return mandate


async def _with_parties(
    session: AsyncSession, mandates: list[Mandate], *, other: Literal["party", "representative"]
) -> list[MandateView]:
    ids = {m.party_id if other == "party" else m.representative_id for m in mandates}
    parties = {
        p.id: p for p in (await session.exec(select(Party).where(col(Party.id).in_(ids)))).all()
    }
    now = utcnow()
    return [
        MandateView(
            mandate=m,
            other=parties[m.party_id if other == "party" else m.representative_id],
            state=state_of(m, now),
        )
        for m in mandates
    ]


async def mandates_granted(session: AsyncSession, party_id: uuid.UUID) -> list[MandateView]:
    """Every mandate the party gave, newest first, with its representative."""
    query = (
        select(Mandate).where(Mandate.party_id == party_id).order_by(col(Mandate.created_at).desc())
    )
    mandates = list((await session.exec(query)).all())
    return await _with_parties(session, mandates, other="representative")


async def mandates_received(
    session: AsyncSession, representative_id: uuid.UUID
) -> list[MandateView]:
    """Every mandate given to the representative, newest first, with who gave it."""
    query = (
        select(Mandate)
        .where(Mandate.representative_id == representative_id)
        .order_by(col(Mandate.created_at).desc())
    )
    mandates = list((await session.exec(query)).all())
    return await _with_parties(session, mandates, other="party")


async def mandate_of(
    session: AsyncSession, *, mandate_id: uuid.UUID, party_id: uuid.UUID
) -> MandateView:
    """One mandate the party gave or received; NotFound for any other."""
    mandate = await session.get(Mandate, mandate_id)
    if mandate is None or party_id not in (mandate.party_id, mandate.representative_id):
        raise NotFound("No such mandate.")
    given = mandate.party_id == party_id
    views = await _with_parties(session, [mandate], other="representative" if given else "party")
    return views[0]


async def acting_for(
    session: AsyncSession, *, representative_id: uuid.UUID, party_id: uuid.UUID
) -> tuple[Party, list[Mandate]] | None:
    """The party the representative may act for now, with the mandates in force; None when
    no mandate of theirs for that party is in force (never given, ended or revoked)."""
    mandates = [
        m for m in await represented_parties(session, representative_id) if m.party_id == party_id
    ]
    if not mandates:
        return None
    party = await session.get(Party, party_id)
    return (party, mandates) if party is not None else None
