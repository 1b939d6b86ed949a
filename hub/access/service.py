"""Who may see which case, and the access log written for every read of a party's data.

Every refusal is the same :class:`~hub.errors.NotFound`, whether the case exists or not,
so a caller cannot learn that someone else's case exists.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from hub.access.chain import append_entry, pseudonym
from hub.db import utcnow
from hub.errors import InvalidInput, NotFound
from hub.events.service import Actor
from hub.models import (
    AccessLogEntry,
    Agency,
    Case,
    CaseParticipant,
    Mandate,
    ProcessingActivity,
)
from hub.observability.logging import request_id_var

ViewerKind = Literal["citizen", "staff", "agency"]


@dataclass(frozen=True)
class Viewer:
    """The authenticated caller of a request.

    A citizen is a party (``party_id``); staff and agency systems belong to ``agency_id``.
    """

    kind: ViewerKind
    id: str
    name: str
    party_id: uuid.UUID | None = None
    agency_id: str | None = None
    role: str | None = None
    identified_by: str = "session"
    session_id: uuid.UUID | None = None
    request_id: str | None = field(default=None, compare=False)

    def actor(self, *, representing: bool = False) -> Actor:
        kind = "representative" if representing else self.kind
        return Actor(kind=kind, id=self.id, name=self.name, agency_id=self.agency_id)

    @property
    def audiences(self) -> tuple[Literal["citizen", "staff"], ...]:
        return ("citizen",) if self.kind == "citizen" else ("citizen", "staff")


async def active_mandate(
    session: AsyncSession, *, representative_id: uuid.UUID, party_id: uuid.UUID, journey_id: str
) -> Mandate | None:
    """The representative's mandate for this party that covers the journey right now, if any."""
    now = utcnow()
    mandates = (
        await session.exec(
            select(Mandate).where(
                Mandate.representative_id == representative_id,
                Mandate.party_id == party_id,
                col(Mandate.revoked_at).is_(None) | (col(Mandate.revoked_at) > now),
            )
        )
    ).all()
    return next((m for m in mandates if m.active_at(now) and m.covers(journey_id)), None)


async def represented_parties(session: AsyncSession, representative_id: uuid.UUID) -> list[Mandate]:
    """The mandates in force now in which ``representative_id`` acts for someone."""
    now = utcnow()
    mandates = (
        await session.exec(
            select(Mandate).where(
                Mandate.representative_id == representative_id,
                col(Mandate.revoked_at).is_(None),
            )
        )
    ).all()
    return [m for m in mandates if m.active_at(now)]


async def agency_takes_part(session: AsyncSession, case: Case, agency_id: str) -> bool:
    if case.agency_id == agency_id:
        return True
    found = await session.get(CaseParticipant, (case.id, agency_id))
    return found is not None


async def case_for_viewer(
    session: AsyncSession, viewer: Viewer, case_id: uuid.UUID, *, for_update: bool = False
) -> tuple[Case, bool]:
    """The case if ``viewer`` may see it, and whether they see it as a representative.

    Raises NotFound otherwise — the same answer as for a case that does not exist.
    """
    query = select(Case).where(Case.id == case_id)
    if for_update:
        query = query.with_for_update()
    case = (await session.exec(query)).first()
    if case is None:
        raise NotFound("No such case.")
    if viewer.kind == "citizen":
        if case.party_id == viewer.party_id:
            return case, False
        if viewer.party_id is not None and await active_mandate(
            session,
            representative_id=viewer.party_id,
            party_id=case.party_id,
            journey_id=case.journey_id,
        ):
            return case, True
        raise NotFound("No such case.")
    if viewer.agency_id is not None and await agency_takes_part(session, case, viewer.agency_id):
        return case, False
    raise NotFound("No such case.")


async def activity_for(
    session: AsyncSession, *, agency_id: str, code: str, fallback_agency_id: str | None = None
) -> ProcessingActivity | None:
    """The processing activity ``code`` in the agency's register (else in the fallback's)."""
    agencies = [agency_id] + ([fallback_agency_id] if fallback_agency_id else [])
    rows = (
        await session.exec(
            select(ProcessingActivity).where(
                ProcessingActivity.code == code,
                col(ProcessingActivity.agency_id).in_(agencies),
            )
        )
    ).all()
    by_agency = {row.agency_id: row for row in rows}
    return next((by_agency[a] for a in agencies if a in by_agency), None)


async def require_activity(
    session: AsyncSession, *, agency_id: str, code: str
) -> ProcessingActivity:
    """A purpose named by staff for a read outside a case must be in their agency's register."""
    activity = await activity_for(session, agency_id=agency_id, code=code)
    if activity is None:
        raise InvalidInput(
            f"'{code}' is not a processing activity in the register of agency '{agency_id}'.",
        )
    return activity


async def record_access(
    session: AsyncSession,
    viewer: Viewer,
    *,
    party_id: uuid.UUID,
    action: str,
    data: str,
    case: Case | None = None,
    activity: ProcessingActivity | None = None,
    activity_code: str | None = None,
) -> AccessLogEntry | None:
    """Write one access log line for a read or change of ``party_id``'s data by ``viewer``.

    A citizen reading their own data is not logged (it is not an access by someone else);
    a representative's read is. Staff and agency reads of a case are logged under the
    journey's processing activity (``activity_code``), looked up in the reader's register.

    The entry is chained and written at once; when it cannot be, this raises
    :class:`~hub.access.chain.AccessLogUnavailable` (503) and the read must not be answered.
    """
    if viewer.kind == "citizen" and viewer.party_id == party_id:
        return None
    if activity is None and activity_code is not None and viewer.agency_id is not None:
        activity = await activity_for(
            session,
            agency_id=viewer.agency_id,
            code=activity_code,
            fallback_agency_id=case.agency_id if case else None,
        )
    entry = AccessLogEntry(
        party_id=party_id,
        subject=pseudonym(party_id),
        actor_kind="representative" if viewer.kind == "citizen" else viewer.kind,
        actor_id=viewer.id,
        actor_name=viewer.name,
        agency_id=viewer.agency_id,
        processing_activity_id=activity.id if activity else None,
        action=action,
        data=data,
        case_id=case.id if case else None,
        # A socket's viewer has none of its own: the id of the request that opened it.
        request_id=viewer.request_id or request_id_var.get(),
    )
    return await append_entry(session, entry)


def visible_agency_filter(agency_id: str) -> object:
    """A WHERE clause: cases the agency owns or takes part in."""
    participating = select(CaseParticipant.case_id).where(CaseParticipant.agency_id == agency_id)
    return or_(col(Case.agency_id) == agency_id, col(Case.id).in_(participating))


def entries_about(
    party_id: uuid.UUID,
) -> Select[AccessLogEntry, ProcessingActivity, Agency, Case]:
    """The access log entries about ``party_id``, each with the processing activity, agency
    and case it names (when it names one): by the party's id, and by its pseudonym for the
    entries of cases past their retention term, which keep only that."""
    return (
        select(AccessLogEntry, ProcessingActivity, Agency, Case)
        .join(
            ProcessingActivity,
            isouter=True,
            onclause=col(AccessLogEntry.processing_activity_id) == ProcessingActivity.id,
        )
        .join(Agency, isouter=True, onclause=col(AccessLogEntry.agency_id) == Agency.id)
        .join(Case, isouter=True, onclause=col(AccessLogEntry.case_id) == Case.id)
        .where(
            or_(
                col(AccessLogEntry.party_id) == party_id,
                col(AccessLogEntry.subject) == pseudonym(party_id),
            )
        )
    )
