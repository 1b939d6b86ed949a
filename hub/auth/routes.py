"""Login and logout for citizens and staff, and ``GET /api/me``."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse, RedirectResponse

from hub.access.service import represented_parties
from hub.auth.citizens import normalise_address, send_login_code, verify_login_code
from hub.auth.dependencies import (
    SESSION_COOKIE,
    CurrentViewer,
    presented_credential,
)
from hub.auth.oidc import HttpIdentityProvider, IdentityProvider, login_with_identity
from hub.auth.schemas import (
    AgencyRef,
    CodeLogin,
    CodeRequest,
    CodeRequested,
    Me,
    PartyRef,
    Representation,
    SessionCreated,
    StaffLogin,
)
from hub.auth.sessions import resolve_session, revoke_session
from hub.auth.staff import login_staff
from hub.config import Settings
from hub.dependencies import SessionDep, SettingsDep
from hub.errors import InvalidInput, NotAuthenticated, NotFound, problem_response
from hub.models import Agency, LoginSession, Party
from hub.ratelimit.logins import citizen_address, staff_address, take_login_try

router = APIRouter(prefix="/api", tags=["auth"])


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    """The session cookie: HttpOnly, SameSite=Lax, Secure whenever the hub is served on HTTPS."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_hours * 3600,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )


def _session_response(login: LoginSession, token: str, settings: Settings) -> JSONResponse:
    body = SessionCreated(token=token, expires_at=login.expires_at)
    response = JSONResponse(body.model_dump(mode="json"))
    response.headers["Cache-Control"] = "no-store"
    set_session_cookie(response, token, settings)
    return response


@router.post(
    "/auth/citizen/code",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CodeRequested,
    responses={
        429: {"description": "Too many codes asked for this address or from here (Retry-After)."}
    },
)
async def ask_login_code(
    body: CodeRequest, request: Request, background: BackgroundTasks, settings: SettingsDep
) -> CodeRequested:
    """Send a one-time login code to a verified address. The answer does not say whether
    the address is known, and neither do its rate limit (it counts every address) or its
    timing (the code is made and sent after the answer)."""
    await take_login_try(request, purpose="code", address=citizen_address(body.address))
    normalise_address(body.address)
    background.add_task(
        send_login_code, request.app.state.database, email_or_phone=body.address, settings=settings
    )
    return CodeRequested()


@router.post(
    "/auth/citizen/session",
    response_model=SessionCreated,
    responses={
        401: {"description": "The code is wrong, used or expired (also for an unknown address)."},
        429: {"description": "Too many tries for this address or from here."},
    },
)
async def log_in_with_code(
    body: CodeLogin, request: Request, session: SessionDep, settings: SettingsDep
) -> JSONResponse:
    await take_login_try(request, purpose="login", address=citizen_address(body.address))
    try:
        login, token = await verify_login_code(
            session, email_or_phone=body.address, code=body.code, settings=settings
        )
    except (NotAuthenticated, InvalidInput) as error:
        # Returned, not raised, so the request's transaction commits the counted wrong try.
        return problem_response(request, error)
    return _session_response(login, token, settings)


@router.post(
    "/auth/staff/session",
    response_model=SessionCreated,
    responses={
        401: {"description": "Wrong email address, password or TOTP code: one answer for all."},
        429: {"description": "Too many tries for this address or from here."},
    },
)
async def log_in_staff(
    body: StaffLogin, request: Request, session: SessionDep, settings: SettingsDep
) -> JSONResponse:
    await take_login_try(request, purpose="login", address=staff_address(body.email))
    login, token = await login_staff(
        session,
        email=body.email,
        password=body.password,
        totp_code=body.totp,
        hours=settings.session_hours,
    )
    return _session_response(login, token, settings)


@router.delete("/auth/session", status_code=status.HTTP_204_NO_CONTENT)
async def log_out(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """End the caller's session and clear the cookie. Logging out twice is not an error; an API
    key is not ended this way."""
    credential = presented_credential(request)
    if credential is not None and credential[0] == "api_key":
        raise InvalidInput("An API key is not a session: revoke the key instead.")
    if credential is not None:
        login = await resolve_session(session, credential[1])
        if login is not None:
            await revoke_session(session, login)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=settings.cookie_secure
    )
    return response


@router.get("/me", response_model=Me)
async def who_am_i(viewer: CurrentViewer, session: SessionDep) -> Me:
    """Who the caller is; for a citizen also the parties they may act for."""
    me = Me(
        kind=viewer.kind,
        id=viewer.id,
        name=viewer.name,
        identified_by=viewer.identified_by,
        role=viewer.role,
    )
    if viewer.party_id is not None:
        party = await session.get(Party, viewer.party_id)
        if party is not None:
            me.party = PartyRef(id=party.id, name=party.name, kind=party.kind)
        for mandate in await represented_parties(session, viewer.party_id):
            represented = await session.get(Party, mandate.party_id)
            if represented is None:
                continue
            me.represents.append(
                Representation(
                    party=PartyRef(id=represented.id, name=represented.name, kind=represented.kind),
                    all_journeys=mandate.all_journeys,
                    journeys=list(mandate.journeys),
                    valid_until=mandate.valid_until,
                )
            )
    if viewer.agency_id is not None:
        agency = await session.get(Agency, viewer.agency_id)
        me.agency = AgencyRef(id=viewer.agency_id, name=agency.name if agency else viewer.agency_id)
    return me


OIDC_COOKIE = "hub_oidc"
OIDC_COOKIE_PATH = "/api/auth/oidc"
OIDC_COOKIE_SECONDS = 600


async def get_identity_provider(request: Request, settings: SettingsDep) -> IdentityProvider:
    """The configured OpenID Connect provider; NotFound when ``oidc_issuer`` is not set."""
    if not settings.oidc_issuer:
        raise NotFound("Login through an identity provider is not configured.")
    provider: IdentityProvider | None = getattr(request.app.state, "identity_provider", None)
    if provider is None:
        http_provider = HttpIdentityProvider.from_settings(settings)
        await http_provider.discover()
        request.app.state.identity_provider = provider = http_provider
    return provider


IdentityProviderDep = Annotated[IdentityProvider, Depends(get_identity_provider)]


def _flow_signature(settings: Settings, state: str, nonce: str) -> str:
    key = settings.secret_key.get_secret_value().encode()
    return hmac.new(key, f"oidc:{state}.{nonce}".encode(), hashlib.sha256).hexdigest()


OIDC_REFUSALS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Login through an identity provider is not configured."},
    503: {"description": "The identity provider cannot be reached."},
}


@router.get("/auth/oidc/login", status_code=status.HTTP_303_SEE_OTHER, responses=OIDC_REFUSALS)
async def start_oidc_login(provider: IdentityProviderDep, settings: SettingsDep) -> Response:
    """Send the browser to the identity provider (only when ``HUB_OIDC_ISSUER`` is set)."""
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    response = RedirectResponse(
        provider.authorization_url(state, nonce), status_code=status.HTTP_303_SEE_OTHER
    )
    response.set_cookie(
        OIDC_COOKIE,
        f"{state}.{nonce}.{_flow_signature(settings, state, nonce)}",
        max_age=OIDC_COOKIE_SECONDS,
        path=OIDC_COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )
    return response


@router.get(
    "/auth/oidc/callback",
    status_code=status.HTTP_303_SEE_OTHER,
    responses=OIDC_REFUSALS
    | {401: {"description": "The login was not started here, took too long, or failed."}},
)
async def finish_oidc_login(
    request: Request,
    provider: IdentityProviderDep,
    session: SessionDep,
    settings: SettingsDep,
    code: Annotated[str, Query(max_length=2048)],
    state: Annotated[str, Query(max_length=200)],
) -> Response:
    """Where the identity provider sends the browser back. The one-use authorization code
    arrives in the query string, as the protocol has it; PKCE makes it worthless to anyone
    without this hub's verifier."""
    state_cookie = request.cookies.get(OIDC_COOKIE, "")
    parts = state_cookie.split(".")
    if (
        len(parts) != 3
        or not hmac.compare_digest(parts[2], _flow_signature(settings, parts[0], parts[1]))
        or not hmac.compare_digest(parts[0], state)
    ):
        raise NotAuthenticated("This login was not started here, or took too long. Try again.")
    identity = await provider.complete(code, state=state, nonce=parts[1])
    _, token = await login_with_identity(session, identity, settings=settings)
    response = RedirectResponse("/", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(OIDC_COOKIE, path=OIDC_COOKIE_PATH)
    set_session_cookie(response, token, settings)
    return response
