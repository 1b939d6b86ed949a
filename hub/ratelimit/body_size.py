"""The ASGI middleware that bounds every request body.

Every body is held to ``max_body_bytes`` except on the few routes in :data:`LARGER_BODIES`,
which take files and have a setting of their own (they also count their bytes themselves;
here they get that limit plus room for the form around the file). Bodies are counted as they
arrive, so a chunked body without ``Content-Length`` is stopped at the limit, never read to
its end; a declared ``Content-Length`` over the limit is refused before the route runs at all.
The answer is 413 problem details, and whatever the route was about to store is not stored:
the refusal is an exception inside the request, so its transaction rolls back.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.config import Settings
from hub.errors import HubError, problem

# Room for the multipart form around a file: its boundaries, part headers and small fields.
FORM_OVERHEAD = 1024 * 1024
METHODS_WITH_BODIES = ("POST", "PUT", "PATCH", "DELETE")

# (method, path as the router serves it, the route's own limit). A test checks that each
# names a served route, so a renamed one fails loudly instead of falling to the default.
LARGER_BODIES: tuple[tuple[str, str, Callable[[Settings], int]], ...] = (
    ("POST", "/api/cases/{case_id}/documents", lambda s: s.max_upload_bytes + FORM_OVERHEAD),
    ("POST", "/cases/{case_id}/documents", lambda s: s.max_upload_bytes + FORM_OVERHEAD),
    ("POST", "/api/notice-jobs", lambda s: s.notice_job_max_bytes),
    ("POST", "/api/inbound/email", lambda s: s.max_mail_bytes),
)


class BodyTooLarge(HubError, HTTPException):
    """413 with the limit in ``max_bytes``. Also a Starlette HTTPException: FastAPI lets
    those through when it reads a body, where any other error would become a 400."""

    status = 413
    title = "Content too large"
    type_suffix = "content-too-large"

    def __init__(self, max_bytes: int) -> None:
        detail = f"The request body is larger than the {max_bytes:,} bytes this endpoint takes."
        HTTPException.__init__(self, status_code=413, detail=detail)
        self.detail = detail
        self.extra = {"max_bytes": max_bytes}


class BodySizeLimit:
    """Answers 413 problem details for a body over its route's limit (see the module)."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.default = settings.max_body_bytes
        self.larger = [
            (method, compile_path(path)[0], limit(settings))
            for method, path, limit in LARGER_BODIES
        ]

    def limit_for(self, method: str, path: str) -> int:
        """The most bytes a body sent to ``method path`` may have."""
        for route_method, pattern, limit in self.larger:
            if method == route_method and pattern.match(path):
                return max(limit, self.default)
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in METHODS_WITH_BODIES:
            await self.app(scope, receive, send)
            return
        limit = self.default
        # The larger limits are looked up only for a body that passes the default one.
        resolved = False

        def current_limit(size: int) -> int:
            nonlocal limit, resolved
            if size > limit and not resolved:
                limit, resolved = self.limit_for(scope["method"], scope["path"]), True
            return limit

        declared = _content_length(scope)
        if declared is not None and declared > current_limit(declared):
            await self._refuse(scope, receive, send, limit)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > current_limit(received):
                    raise BodyTooLarge(limit)
            return message

        started = False

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge as refusal:
            # Raised where no route's error handler catches it (a middleware reading the
            # body): answered here, unless an answer is already on its way.
            if started:
                raise
            await self._refuse(scope, receive, send, refusal.extra["max_bytes"])

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        refusal = BodyTooLarge(limit)
        response = problem(
            refusal.status,
            refusal.title,
            refusal.detail,
            refusal.type_suffix,
            scope["path"],
            **refusal.extra,
        )
        # The client may still be sending; closing tells it to stop instead of waiting.
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    return int(value) if value is not None and value.isdigit() else None
