"""A real local HTTP receiver for webhooks, which checks every signature with its own
implementation of the documented scheme, and helpers to queue and send events."""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from hub.db import Database, utcnow
from hub.models import WebhookDelivery


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool

    @property
    def event(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.body)
        return result


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The receiver's own check: HMAC-SHA256 over ``id.timestamp.body`` with the decoded
    secret, compared in constant time, and a timestamp within five minutes."""
    try:
        key = base64.b64decode(secret.split("_", 1)[1])
        webhook_id = headers["webhook-id"]
        timestamp = headers["webhook-timestamp"]
        given = headers["webhook-signature"]
    except (KeyError, IndexError, ValueError):
        return False
    if abs(time.time() - int(timestamp)) > 300:
        return False
    mac = hmac.new(key, webhook_id.encode() + b"." + timestamp.encode() + b"." + body, "sha256")
    expected = "v1=" + base64.b64encode(mac.digest()).decode()
    return any(hmac.compare_digest(expected, part) for part in given.split(" "))


@dataclass
class Receiver:
    """Answers each POST with the next scripted status (204 when the script is empty); a
    float in the script means: wait that many seconds, then answer 204."""

    secret: str = ""
    script: list[int | float] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.received.append(
                    Received(headers, body, verify(receiver.secret, headers, body))
                )
                receiver.arrived.set()
                action = receiver.script.pop(0) if receiver.script else 204
                if isinstance(action, float):
                    time.sleep(action)
                    action = 204
                self.send_response(action)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    yield r
    r.stop()


@pytest.fixture
async def outgoing() -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP client the worker posts with."""
    async with httpx.AsyncClient() as c:
        yield c


async def make_due(database: Database) -> None:
    """Skip the backoff wait: every waiting delivery is due now."""
    async with database.session() as session:
        waiting = select(WebhookDelivery).where(
            col(WebhookDelivery.status).in_(("pending", "sending"))
        )
        for delivery in (await session.exec(waiting)).all():
            delivery.next_attempt_at = utcnow() - dt.timedelta(seconds=1)
            session.add(delivery)
