"""Staff looking up a party: "no wrong door" — any agency's desk can find a citizen's cases
(title, agency, stage; not their contents) to help them or hand them on. Every search names
a purpose from the agency's register and is written to the citizen's access log."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlmodel import select

from hub.access.service import record_access, require_activity
from hub.auth.dependencies import CurrentStaff
from hub.cases.service import cases_of_party
from hub.dependencies import CatalogDep, SessionDep
from hub.errors import NotFound
from hub.models import Agency, Case
from hub.parties.service import find_party, get_party

router = APIRouter(prefix="/api/parties", tags=["parties"])


class PartySearch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bsn: str | None = None
    kvk_number: str | None = None
    case_reference: str | None = None
    purpose: str = Field(description="Processing activity code from the agency's register.")

    @model_validator(mode="after")
    def _one_key(self) -> PartySearch:
        given = [v for v in (self.bsn, self.kvk_number, self.case_reference) if v]
        if len(given) != 1:
            raise ValueError("search by exactly one of bsn, kvk_number, case_reference")
        return self


class CaseListing(BaseModel):
    id: uuid.UUID
    reference: str
    title: str
    agency: str
    agency_name: str
    stage: str
    status: str


class PartyFound(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    cases: list[CaseListing]


@router.post("/search")
async def search_party(
    body: PartySearch, staff: CurrentStaff, session: SessionDep, catalog: CatalogDep
) -> PartyFound:
    """Find a party by identifier or case reference and list their cases across agencies.

    The identifier travels in the body, never in the URL. The purpose must be an activity
    in the staff member's agency register; the search is logged for the citizen to read.
    """
    assert staff.agency_id is not None
    activity = await require_activity(session, agency_id=staff.agency_id, code=body.purpose)
    if body.case_reference:
        case = (
            await session.exec(select(Case).where(Case.reference == body.case_reference.upper()))
        ).first()
        party_id = case.party_id if case else None
    else:
        party = await find_party(session, bsn=body.bsn, kvk_number=body.kvk_number)
        party_id = party.id if party else None
    if party_id is None:
        raise NotFound("No party found.")
    party = await get_party(session, party_id)
    await record_access(
        session, staff, party_id=party.id, action="search", data="case_list", activity=activity
    )
    agencies = {a.id: a.name for a in (await session.exec(select(Agency))).all()}
    return PartyFound(
        id=party.id,
        name=party.name,
        kind=party.kind,
        cases=[
            CaseListing(
                id=case.id,
                reference=case.reference,
                title=catalog.get(case.journey_id, case.journey_version).title.get("nl"),
                agency=case.agency_id,
                agency_name=agencies.get(case.agency_id, case.agency_id),
                stage=case.stage,
                status=case.status,
            )
            for case in await cases_of_party(session, party.id)
        ],
    )
