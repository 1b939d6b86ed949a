"""Who is calling: the :class:`~hub.access.service.Viewer` of every authenticated request.

Credentials are read from the ``Authorization: Bearer`` header (a session token, or an API key
``hub_…``), the ``X-API-Key`` header, or the ``hub_session`` cookie — never from the query
string. Credentials that are given but not valid are refused, not skipped.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.access.service import Viewer
from hub.auth.api_keys import looks_like_key, verify_api_key
from hub.auth.sessions import resolve_session
from hub.dependencies import SessionDep
from hub.errors import Forbidden, NotAuthenticated
from hub.models import Agency, LoginSession, Party, StaffMember

SESSION_COOKIE = "hub_session"
NOT_AUTHENTICATED = "Log in first, or give a valid session token or API key."
CREDENTIALS_INVALID = "The session or API key is not valid (anymore). Log in again."

# How the API description says who may call an operation: each one lists the kinds of caller
# it takes. They only declare; get_viewer reads the credential (a key also works as a bearer).
CITIZEN_SESSION = HTTPBearer(
    scheme_name="citizenSession",
    description="A citizen's session token, from POST /api/auth/citizen/session.",
    auto_error=False,
)
STAFF_SESSION = HTTPBearer(
    scheme_name="staffSession",
    description="A staff member's session token, from POST /api/auth/staff/session.",
    auto_error=False,
)
AGENCY_KEY = APIKeyHeader(
    name="X-API-Key",
    scheme_name="agencyKey",
    description="An agency system's API key (hub_…), also taken as 'Authorization: Bearer'.",
    auto_error=False,
)


def presented_credential(request: Request) -> tuple[str, str] | None:
    """``("api_key" | "session", secret)`` as presented with the request, if any."""
    authorization = request.headers.get("authorization", "")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            raise NotAuthenticated("Use 'Authorization: Bearer <token>'.")
        return ("api_key" if looks_like_key(value) else "session"), value
    api_key = request.headers.get("x-api-key", "").strip()
    if api_key:
        return "api_key", api_key
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if cookie:
        return "session", cookie
    return None


async def viewer_for_session(
    session: AsyncSession, login: LoginSession, *, request_id: str | None = None
) -> Viewer | None:
    """The viewer a live login session stands for; None if its subject is gone or inactive."""
    if login.subject_kind == "citizen":
        party = await session.get(Party, login.subject_id)
        if party is None:
            return None
        return Viewer(
            kind="citizen",
            id=str(party.id),
            name=party.name,
            party_id=party.id,
            identified_by=login.identified_by,
            session_id=login.id,
            request_id=request_id,
        )
    if login.subject_kind == "staff":
        staff = await session.get(StaffMember, login.subject_id)
        if staff is None or not staff.active:
            return None
        return Viewer(
            kind="staff",
            id=str(staff.id),
            name=staff.display_name,
            agency_id=staff.agency_id,
            role=staff.role,
            identified_by=login.identified_by,
            session_id=login.id,
            request_id=request_id,
        )
    return None


async def authenticate(
    session: AsyncSession, kind: str, secret: str, *, request_id: str | None = None
) -> Viewer | None:
    """The viewer for a presented credential, or None if it is not valid."""
    if kind == "api_key":
        key = await verify_api_key(session, secret)
        if key is None:
            return None
        agency = await session.get(Agency, key.agency_id)
        agency_name = agency.name if agency else key.agency_id
        return Viewer(
            kind="agency",
            id=str(key.id),
            name=f"{agency_name} ({key.name})",
            agency_id=key.agency_id,
            identified_by="api_key",
            request_id=request_id,
        )
    login = await resolve_session(session, secret)
    if login is None:
        return None
    return await viewer_for_session(session, login, request_id=request_id)


async def get_viewer(request: Request, session: SessionDep) -> Viewer:
    credential = presented_credential(request)
    if credential is None:
        raise NotAuthenticated(NOT_AUTHENTICATED)
    request_id: str | None = getattr(request.state, "request_id", None)
    viewer = await authenticate(session, *credential, request_id=request_id)
    if viewer is None:
        raise NotAuthenticated(CREDENTIALS_INVALID)
    return viewer


Viewed = Annotated[Viewer, Depends(get_viewer)]
CitizenSession = Annotated[object, Security(CITIZEN_SESSION)]
StaffSession = Annotated[object, Security(STAFF_SESSION)]
AgencyKey = Annotated[object, Security(AGENCY_KEY)]


async def any_viewer(viewer: Viewed, _c: CitizenSession, _s: StaffSession, _a: AgencyKey) -> Viewer:
    return viewer


CurrentViewer = Annotated[Viewer, Depends(any_viewer)]


async def require_citizen(viewer: Viewed, _: CitizenSession) -> Viewer:
    if viewer.kind != "citizen":
        raise Forbidden("Only citizens can do this.")
    return viewer


async def require_staff(viewer: Viewed, _: StaffSession) -> Viewer:
    if viewer.kind != "staff":
        raise Forbidden("Only staff can do this.")
    return viewer


async def require_agency(viewer: Viewed, _: AgencyKey) -> Viewer:
    if viewer.kind != "agency":
        raise Forbidden("Only an agency's system, with its API key, can do this.")
    return viewer


async def require_staff_or_agency(viewer: Viewed, _s: StaffSession, _a: AgencyKey) -> Viewer:
    if viewer.kind not in ("staff", "agency"):
        raise Forbidden("Only staff or an agency's system can do this.")
    return viewer


CurrentCitizen = Annotated[Viewer, Depends(require_citizen)]
CurrentStaff = Annotated[Viewer, Depends(require_staff)]
CurrentAgency = Annotated[Viewer, Depends(require_agency)]
CurrentStaffOrAgency = Annotated[Viewer, Depends(require_staff_or_agency)]
