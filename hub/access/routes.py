"""The citizen's own access log: who read or changed their data, when, and on what ground."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlmodel import col

from hub.access.service import entries_about
from hub.auth.dependencies import CurrentCitizen
from hub.dependencies import IsoDateTime, SessionDep
from hub.models import AccessLogEntry

router = APIRouter(prefix="/api/me", tags=["access log"])


class AccessLogOut(BaseModel):
    at: dt.datetime
    who: str | None
    actor_kind: str
    agency: str | None
    action: str
    data: str
    case_reference: str | None
    purpose: str | None
    legal_ground: str | None
    request_id: str | None


@router.get("/access-log")
async def my_access_log(
    citizen: CurrentCitizen,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[
        IsoDateTime | None, Query(description="Page: entries older than this.")
    ] = None,
) -> list[AccessLogOut]:
    """Every read or change of the citizen's data by staff, agency systems or representatives,
    newest first, with the purpose and legal ground from the agency's register."""
    assert citizen.party_id is not None
    query = (
        entries_about(citizen.party_id).order_by(col(AccessLogEntry.created_at).desc()).limit(limit)
    )
    if before is not None:
        query = query.where(AccessLogEntry.created_at < before)
    rows = (await session.exec(query)).all()
    return [
        AccessLogOut(
            at=entry.created_at,
            who=entry.actor_name,
            actor_kind=entry.actor_kind,
            agency=agency.name if agency else None,
            action=entry.action,
            data=entry.data,
            case_reference=case.reference if case else None,
            purpose=activity.purpose if activity else None,
            legal_ground=activity.legal_ground if activity else None,
            request_id=entry.request_id,
        )
        for entry, activity, agency, case in rows
    ]
