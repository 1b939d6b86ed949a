"""Parties over the API.

Staff looking up a party: "no wrong door" — any agency's desk can find a citizen's cases
(title, agency, stage; not their contents) to help them or hand them on. Every search names
a purpose from the agency's register and is written to the citizen's access log.

The citizen's own preferences and mandates (``/api/me/…``), each change of a preference
kept; staff of an agency with a case of the party read that history, logged.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.access.service import Viewer, record_access, require_activity, visible_agency_filter
from hub.auth.dependencies import CurrentCitizen, CurrentStaff, CurrentStaffOrAgency
from hub.cases.service import cases_of_party
from hub.dependencies import CatalogDep, SessionDep, SettingsDep
from hub.errors import NotFound
from hub.messages.service import address_for
from hub.models import Agency, Case, Party
from hub.models.party import PreferenceChange
from hub.parties.mandates import (
    MandateView,
    grant_mandate,
    mandate_of,
    mandates_granted,
    mandates_received,
    revoke_mandate,
)
from hub.parties.preferences import (
    CHANNELS,
    NEEDS,
    ChangedBy,
    change_preferences,
    preference_history,
    preferences_of,
)
from hub.parties.service import find_party, get_party

router = APIRouter(tags=["parties"])


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


@router.post("/api/parties/search")
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


# -- the citizen's preferences ----------------------------------------------------------------


class PreferencesOut(BaseModel):
    channel: str = Field(description="portal, email, sms or letter: how notices reach them.")
    language: str = Field(description="nl or en.")
    needs: list[str] = Field(description=f"Among {', '.join(NEEDS)}.")
    reachable_channels: list[str] = Field(
        description="The channels the party can be reached on now, so may choose."
    )


class PreferencesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str | None = None
    language: str | None = None
    needs: list[str] | None = Field(default=None, max_length=len(NEEDS))


class PreferenceChangeOut(BaseModel):
    preference: str = Field(description="channel, language or needs.")
    before: str | list[str] | None
    after: str | list[str] | None
    changed_by_kind: str = Field(description="citizen, representative, staff or agency.")
    changed_by_name: str
    source: str = Field(description="Through which channel: portal, desk or api.")
    changed_at: dt.datetime

    @classmethod
    def of(cls, change: PreferenceChange) -> PreferenceChangeOut:
        return cls(
            preference=change.preference,
            before=change.before,
            after=change.after,
            changed_by_kind=change.changed_by_kind,
            changed_by_name=change.changed_by_name,
            source=change.source,
            changed_at=change.changed_at,
        )


async def preferences_out(session: AsyncSession, party: Party) -> PreferencesOut:
    current = preferences_of(party)
    return PreferencesOut(
        channel=current.channel,
        language=current.language,
        needs=list(current.needs),
        reachable_channels=["portal"]
        + [c for c in CHANNELS[1:] if await address_for(session, party, c)],
    )


def changed_by(viewer: Viewer) -> ChangedBy:
    return ChangedBy(kind=viewer.kind, id=viewer.id, name=viewer.name)


@router.get("/api/me/preferences")
async def my_preferences(citizen: CurrentCitizen, session: SessionDep) -> PreferencesOut:
    """How the citizen wants to hear from the government: channel, language, needs."""
    assert citizen.party_id is not None
    return await preferences_out(session, await get_party(session, citizen.party_id))


@router.put("/api/me/preferences")
async def set_my_preferences(
    body: PreferencesIn, citizen: CurrentCitizen, session: SessionDep
) -> PreferencesOut:
    """Change what is given; what is left out stays. Email or SMS needs a verified address
    of that kind, letters a postal address (422 with a ``reason`` otherwise). Every change
    is kept in the history."""
    assert citizen.party_id is not None
    party = await get_party(session, citizen.party_id)
    await change_preferences(
        session,
        party,
        channel=body.channel,
        language=body.language,
        needs=body.needs,
        changed_by=changed_by(citizen),
        source="api",
    )
    return await preferences_out(session, party)


@router.get("/api/me/preferences/history")
async def my_preference_history(
    citizen: CurrentCitizen,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> list[PreferenceChangeOut]:
    """Every change of the citizen's preferences, newest first: from what to what, by whom,
    through which channel."""
    assert citizen.party_id is not None
    history = await preference_history(session, citizen.party_id, limit=limit)
    return [PreferenceChangeOut.of(change) for change in history]


async def case_of_agency(session: AsyncSession, viewer: Viewer, party_id: uuid.UUID) -> Case:
    """The party's newest case the viewer's agency owns or takes part in: the ground on which
    its staff and systems read or change the party's preferences. NotFound without one."""
    assert viewer.agency_id is not None
    case = (
        await session.exec(
            select(Case)
            .where(Case.party_id == party_id)
            .where(visible_agency_filter(viewer.agency_id))  # type: ignore[arg-type]
            .order_by(col(Case.created_at).desc())
            .limit(1)
        )
    ).first()
    if case is None:
        raise NotFound("No party found.")
    return case


@router.put("/api/parties/{party_id}/preferences")
async def set_party_preferences(
    party_id: uuid.UUID,
    body: PreferencesIn,
    viewer: CurrentStaffOrAgency,
    session: SessionDep,
    catalog: CatalogDep,
) -> PreferencesOut:
    """Change a party's preferences as they asked at the desk (staff: recorded as "desk") or
    through an agency's system ("api"), for an agency with a case of the party; the same
    checks as the citizen's own change, kept in the history the citizen reads, and logged."""
    case = await case_of_agency(session, viewer, party_id)
    party = await get_party(session, party_id)
    await change_preferences(
        session,
        party,
        channel=body.channel,
        language=body.language,
        needs=body.needs,
        changed_by=changed_by(viewer),
        source="desk" if viewer.kind == "staff" else "api",
    )
    await record_access(
        session,
        viewer,
        party_id=party_id,
        action="change",
        data="preferences",
        case=case,
        activity_code=catalog.get(case.journey_id, case.journey_version).processing_activity,
    )
    return await preferences_out(session, party)


@router.get("/api/parties/{party_id}/preferences/history")
async def party_preference_history(
    party_id: uuid.UUID,
    viewer: CurrentStaffOrAgency,
    session: SessionDep,
    catalog: CatalogDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> list[PreferenceChangeOut]:
    """The party's preference changes, for staff or a system of an agency that has a case
    of the party (owned or taking part); the read is logged under that case's processing
    activity. Any other party: 404."""
    case = await case_of_agency(session, viewer, party_id)
    await record_access(
        session,
        viewer,
        party_id=party_id,
        action="read",
        data="preference_history",
        case=case,
        activity_code=catalog.get(case.journey_id, case.journey_version).processing_activity,
    )
    history = await preference_history(session, party_id, limit=limit)
    return [PreferenceChangeOut.of(change) for change in history]


# -- the citizen's mandates -------------------------------------------------------------------


class PartyRef(BaseModel):
    id: uuid.UUID
    name: str


class MandateOut(BaseModel):
    id: uuid.UUID
    party: PartyRef = Field(description="Who gave the mandate: the one represented.")
    representative: PartyRef
    journeys: list[str] | None = Field(description="The journeys it covers; null: all.")
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    revoked_at: dt.datetime | None
    state: str = Field(description="active, upcoming, ended or revoked.")


class MandatesOut(BaseModel):
    granted: list[MandateOut] = Field(description="Mandates the citizen gave, newest first.")
    received: list[MandateOut] = Field(description="Mandates the citizen was given.")


class MandateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    representative_bsn: str = Field(max_length=20)
    representative_name: str = Field(
        min_length=1, max_length=300, description="Checked against the BSN's holder."
    )
    journeys: list[str] | None = Field(
        default=None, max_length=100, description="Journey ids; null or left out: all."
    )
    valid_from: dt.date | None = Field(default=None, description="First day; today if left out.")
    valid_until: dt.date | None = Field(default=None, description="Last day; none if left out.")


def mandate_out(view: MandateView, me: Party) -> MandateOut:
    mandate = view.mandate
    mine = mandate.party_id == me.id
    party, representative = (me, view.other) if mine else (view.other, me)
    return MandateOut(
        id=mandate.id,
        party=PartyRef(id=party.id, name=party.name),
        representative=PartyRef(id=representative.id, name=representative.name),
        journeys=None if mandate.all_journeys else list(mandate.journeys),
        valid_from=mandate.valid_from,
        valid_until=mandate.valid_until,
        revoked_at=mandate.revoked_at,
        state=view.state,
    )


@router.get("/api/me/mandates")
async def my_mandates(citizen: CurrentCitizen, session: SessionDep) -> MandatesOut:
    """The mandates the citizen gave and those given to them, in force or not."""
    assert citizen.party_id is not None
    me = await get_party(session, citizen.party_id)
    return MandatesOut(
        granted=[mandate_out(v, me) for v in await mandates_granted(session, me.id)],
        received=[mandate_out(v, me) for v in await mandates_received(session, me.id)],
    )


@router.post("/api/me/mandates", status_code=status.HTTP_201_CREATED)
async def give_mandate(
    body: MandateIn,
    citizen: CurrentCitizen,
    session: SessionDep,
    catalog: CatalogDep,
    settings: SettingsDep,
) -> MandateOut:
    """Let someone act for the citizen. The representative is named by BSN and name; when
    the two do not belong together — or the BSN is unknown — the answer is the same 422."""
    assert citizen.party_id is not None
    me = await get_party(session, citizen.party_id)
    mandate = await grant_mandate(
        session,
        party=me,
        representative_bsn=body.representative_bsn,
        representative_name=body.representative_name,
        journeys=body.journeys,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        catalog=catalog,
        timezone=settings.timezone,
    )
    return mandate_out(await mandate_of(session, mandate_id=mandate.id, party_id=me.id), me)


@router.post("/api/me/mandates/{mandate_id}/revoke")
async def end_mandate(
    mandate_id: uuid.UUID, citizen: CurrentCitizen, session: SessionDep
) -> MandateOut:
    """End a mandate at once; the citizen who gave it or the representative may."""
    assert citizen.party_id is not None
    me = await get_party(session, citizen.party_id)
    await revoke_mandate(session, mandate_id=mandate_id, by_party_id=me.id)
    return mandate_out(await mandate_of(session, mandate_id=mandate_id, party_id=me.id), me)
