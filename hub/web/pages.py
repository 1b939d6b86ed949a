"""What every page shares: the templates in both languages, rendering with the CSRF token
and the page's language, who is logged in (from the session cookie), the page route that
answers errors as pages, and ``install_pages()``, which adds all of it to the app.

Pages are server-rendered HTML that works without script; ``/static/hub.js`` only adds
small comforts. Everything a person typed is escaped: autoescape is on for every template.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader

from hub.access.service import Viewer
from hub.auth.dependencies import SESSION_COOKIE, authenticate
from hub.config import Settings
from hub.dependencies import SessionDep
from hub.errors import HubError
from hub.web.acting import acting_for_page
from hub.web.i18n import (
    LANGUAGE_COOKIE,
    LANGUAGES,
    Language,
    language,
    local_time,
    long_date,
    mark,
    translations,
)
from hub.web.security import (
    CSRF_FIELD,
    CsrfRefused,
    SecurityHeaders,
    check_csrf,
    csrf_token,
    set_csrf_cookie,
)

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"
CITIZEN_LOGIN = "/login"
STAFF_LOGIN = "/console/login"


def _environment(lang: Language) -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # One environment per language, so that no request ever renders with another's catalogue.
    environment.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    environment.filters["long_date"] = lambda day: long_date(day, lang)
    environment.filters["local_time"] = lambda moment, timezone: local_time(moment, lang, timezone)
    return environment


ENVIRONMENTS = {lang: _environment(lang) for lang in LANGUAGES}


def page_language(request: Request) -> Language:
    """The language the browser chose with the switch; Dutch until it chooses."""
    return language(request.cookies.get(LANGUAGE_COOKIE))


def local_path(target: str | None, default: str) -> str:
    """``target`` when it is a path on this site, else ``default``: a login or language
    switch never sends the browser to another site."""
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        # Browsers drop tabs and line breaks from URLs: "/\t/evil.example" would become
        # "//evil.example".
        and target.isascii()
        and target.isprintable()
        and " " not in target
    ):
        return target
    return default


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    viewer: Viewer | None = None,
) -> HTMLResponse:
    """The page ``template`` in the browser's language, with the CSRF token for its forms.

    Pages are never cached: most show someone's personal data.
    """
    settings: Settings = request.app.state.settings
    lang = page_language(request)
    page = ENVIRONMENTS[lang].get_template(template)
    html = page.render(
        lang=lang,
        other_lang="en" if lang == "nl" else "nl",
        path=request.url.path,
        viewer=viewer,
        csrf_token=csrf_token(request, settings),
        timezone=settings.timezone,
        development=settings.environment in ("development", "test"),
        acting_for=getattr(request.state, "acting_for", None),
        **(context or {}),
    )
    response = HTMLResponse(html, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    set_csrf_cookie(request, response, settings)
    return response


def set_language_cookie(response: Response, lang: str, settings: Settings) -> None:
    """Remember the browser's language for a year."""
    response.set_cookie(
        LANGUAGE_COOKIE,
        language(lang),
        max_age=365 * 24 * 3600,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )


async def posted_form(request: Request, settings: Settings) -> dict[str, str]:
    """The posted form's text fields, once its CSRF token is checked (CsrfRefused if not)."""
    form = await request.form(max_files=0, max_fields=20, max_part_size=16 * 1024)
    fields = {key: value for key, value in form.multi_items() if isinstance(value, str)}
    check_csrf(request, settings, fields.get(CSRF_FIELD))
    return fields


class LoginRequired(Exception):
    """The page needs someone logged in (of another kind than the browser's session)."""

    def __init__(self, login_page: str) -> None:
        super().__init__(login_page)
        self.login_page = login_page


# The login forms' answer when the client or the address has no tries left (429).
TOO_MANY_TRIES = mark("Too many tries. Wait a few minutes, then try again.")


def _error_page(request: Request, status_code: int, reason: str) -> HTMLResponse:
    return render(
        request,
        "pages/error.html",
        {"status": status_code, "reason": reason},
        status_code=status_code,
    )


class PageRoute(APIRoute):
    """A route whose refusals are pages, not problem details: a browser that is not logged
    in goes to the login page, and every other error is a page in the browser's language."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as needed:
                # After logging in the browser comes back here with a GET; a form it was
                # posting when its session ran out cannot be sent again that way.
                target = request.url.path if request.method == "GET" else "/"
                return RedirectResponse(
                    f"{needed.login_page}?next={quote(target, safe='/')}", status_code=303
                )
            except CsrfRefused:
                return _error_page(request, 403, "csrf")
            except RequestValidationError:
                return _error_page(request, 404, "not_found")
            except HubError as error:
                page = _error_page(request, error.status, "error")
                retry_after = getattr(error, "retry_after", None)
                if retry_after is not None:
                    page.headers["Retry-After"] = str(retry_after)
                return page

        return page_handler


def page_router() -> APIRouter:
    """A router for pages: HTML, left out of the API description."""
    return APIRouter(route_class=PageRoute, include_in_schema=False)


async def page_viewer(request: Request, session: SessionDep) -> Viewer | None:
    """Who is logged in, from the session cookie only (pages take no bearer tokens)."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        return None
    viewer = await authenticate(
        session, "session", token, request_id=getattr(request.state, "request_id", None)
    )
    if viewer is not None and viewer.kind == "citizen":
        # Every page says so while a representative acts for someone (hub/web/acting.py).
        request.state.acting_for = await acting_for_page(request, session, viewer)
    return viewer


PageViewer = Annotated[Viewer | None, Depends(page_viewer)]


def citizen_page(viewer: PageViewer) -> Viewer:
    """The logged-in citizen; anyone else is sent to the citizens' login page."""
    if viewer is None or viewer.kind != "citizen":
        raise LoginRequired(CITIZEN_LOGIN)
    return viewer


def staff_page(viewer: PageViewer) -> Viewer:
    """The logged-in member of staff; anyone else is sent to the staff login page."""
    if viewer is None or viewer.kind != "staff":
        raise LoginRequired(STAFF_LOGIN)
    return viewer


CitizenPage = Annotated[Viewer, Depends(citizen_page)]
StaffPage = Annotated[Viewer, Depends(staff_page)]


router = page_router()


@router.get("/", response_class=RedirectResponse, status_code=303)
async def home(viewer: PageViewer) -> RedirectResponse:
    """Where the site starts: your cases, the staff queue, or the login page."""
    if viewer is not None and viewer.kind == "staff":
        return RedirectResponse("/console", status_code=303)
    if viewer is not None and viewer.kind == "citizen":
        return RedirectResponse("/my-cases", status_code=303)
    return RedirectResponse(CITIZEN_LOGIN, status_code=303)


@router.get("/language/{lang}", response_class=RedirectResponse, status_code=303)
async def switch_language(lang: str, request: Request, next: str | None = None) -> RedirectResponse:
    """Show the pages in ``lang`` (nl or en) from now on, starting with the page ``next``."""
    response = RedirectResponse(local_path(next, "/"), status_code=303)
    set_language_cookie(response, language(lang), request.app.state.settings)
    return response


def install_pages(app: FastAPI, settings: Settings) -> None:
    """The portal and console pages, their static files and the security headers."""
    from hub.web.chat import router as chat_router
    from hub.web.console import router as console_router
    from hub.web.desk import router as desk_router
    from hub.web.insights import router as insights_router
    from hub.web.notices import router as notices_router
    from hub.web.portal import router as portal_router
    from hub.web.preferences import router as preferences_router
    from hub.web.representation import router as representation_router
    from hub.web.review import router as review_router

    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(router)
    app.include_router(portal_router)
    app.include_router(notices_router)
    app.include_router(console_router)
    app.include_router(chat_router)
    app.include_router(preferences_router)
    app.include_router(representation_router)
    app.include_router(desk_router)
    app.include_router(review_router)
    app.include_router(insights_router)
