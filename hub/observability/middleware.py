"""The outermost middleware: every request gets an id, and every answer is counted and timed.

The id is the client's ``X-Request-ID`` when it is 8 to 64 ASCII characters, else a new one. It
goes on ``request.state.request_id`` (the access log and webhooks take it from there or from
the context variable), in :data:`hub.observability.logging.request_id_var` for every log
line of the request, and back to the client in the ``X-Request-ID`` header.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.observability.logging import request_id_var
from hub.observability.metrics import HTTP_LATENCY, HTTP_REQUESTS, route_of

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == b"x-request-id":
            try:
                incoming = value.decode("ascii")
            except UnicodeDecodeError:
                break
            if 8 <= len(incoming) <= 64 and incoming.isprintable():
                return incoming
            break
    return secrets.token_hex(8)


class RequestContext:
    """Request id, log context and the HTTP metrics, as plain ASGI (no extra task per
    request, and the context variable is set in the task that uvicorn logs from)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = request_id_from(scope.get("headers", []))
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = rid
        token = request_id_var.set(rid)
        if scope["type"] == "websocket":
            # A socket's log lines carry the id of the request that opened it, for its life.
            await self.app(scope, receive, send)
            request_id_var.reset(token)
            return

        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            # Left set: the server logs the traceback after this returns, in this task, and
            # that line should carry the request's id too.
            self._count(scope, 500, started)
            raise
        self._count(scope, status, started)
        request_id_var.reset(token)

    @staticmethod
    def _count(scope: Scope, status: int, started: float) -> None:
        method = scope.get("method", "GET")
        method = method if method in METHODS else "other"
        route = route_of(scope)
        HTTP_REQUESTS.labels(method, route, str(status)).inc()
        HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)
