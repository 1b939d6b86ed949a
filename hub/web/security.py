"""What keeps the pages safe in a browser: a CSRF token on every form and the security
headers on every response.

CSRF: the browser holds a random ``hub_csrf`` cookie (HttpOnly, SameSite=Lax); each form
carries a token that is an HMAC, under the hub's secret key, of that cookie and of the
session cookie. Another site can make the browser send the cookies but cannot read them, so
it cannot make the token; and because the token is bound to the session, a cookie planted
from elsewhere is worth nothing after login either. A POST to a page without the right
token is answered with a 403 page.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.auth.dependencies import SESSION_COOKIE
from hub.config import Settings
from hub.errors import Forbidden

CSRF_COOKIE = "hub_csrf"
CSRF_FIELD = "csrf_token"

# No inline script or style anywhere: the pages load /static/hub.css and /static/hub.js.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
# FastAPI's API explorer loads its script and style from a CDN with inline code; it is a
# developer's page, not one citizens or staff use, so it keeps working without the policy.
WITHOUT_POLICY = ("/docs", "/redoc")


class CsrfRefused(Forbidden):
    """A form came without the token of the page that showed it."""


def _token(settings: Settings, browser_secret: str, session_token: str) -> str:
    key = settings.secret_key.get_secret_value().encode()
    return hmac.new(
        key, f"csrf:{browser_secret}:{session_token}".encode(), hashlib.sha256
    ).hexdigest()


def browser_secret(request: Request) -> str:
    """The browser's CSRF cookie, or a new one that the page's response sets."""
    existing: str | None = getattr(request.state, "csrf_secret", None)
    if existing:
        return existing
    secret = request.cookies.get(CSRF_COOKIE, "")
    if not (16 <= len(secret) <= 128 and secret.isalnum()):
        secret = secrets.token_hex(32)
        request.state.csrf_secret_is_new = True
    request.state.csrf_secret = secret
    return secret


def csrf_token(request: Request, settings: Settings) -> str:
    """The token for forms on the page being rendered for this browser and session."""
    return _token(settings, browser_secret(request), request.cookies.get(SESSION_COOKIE, ""))


def check_csrf(request: Request, settings: Settings, presented: str | None) -> None:
    """Refuses the request (403) unless ``presented`` is this browser and session's token."""
    secret = request.cookies.get(CSRF_COOKIE, "")
    if not secret or not presented:
        raise CsrfRefused("The form has expired or did not come from this site.")
    expected = _token(settings, secret, request.cookies.get(SESSION_COOKIE, ""))
    if not hmac.compare_digest(expected, presented):
        raise CsrfRefused("The form has expired or did not come from this site.")


def set_csrf_cookie(request: Request, response: Response, settings: Settings) -> None:
    """Sets the CSRF cookie on ``response`` when this request made a new one."""
    if getattr(request.state, "csrf_secret_is_new", False):
        response.set_cookie(
            CSRF_COOKIE,
            request.state.csrf_secret,
            path="/",
            httponly=True,
            samesite="lax",
            secure=settings.cookie_secure,
        )


class SecurityHeaders:
    """Adds the security headers to every HTTP response; a header a route set itself (the
    document download's stricter policy) is kept."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        policy = not path.startswith(WITHOUT_POLICY)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                if policy and headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
                    headers.setdefault("X-Frame-Options", "DENY")
            await send(message)

        await self.app(scope, receive, send_with_headers)
