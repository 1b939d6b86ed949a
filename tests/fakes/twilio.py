"""A local stand-in for Twilio's Messages API, and webhooks signed as Twilio signs them.

Twilio cannot be reached from the tests. :class:`TwilioStandIn` is a real HTTP server on a
free port (``http.server`` in a thread) that answers
``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` as Twilio does — HTTP Basic auth with
the account SID and auth token, ``201`` with the message resource as JSON, errors as Twilio's
JSON (``code``, ``message``, ``more_info``, ``status``) — and records every request it got.

Use it as a context manager, or through a fixture (``tests/sms/conftest.py`` has one)::

    with TwilioStandIn() as twilio:
        settings = Settings(..., **twilio.settings())   # twilio_account_sid, _auth_token, …
        ...
        twilio.fail_next(400, code=21211)     # the next create answers like Twilio's 400
        twilio.fail_next(503)                 # then a 503 without a Twilio body
        ... deliver ...
        [sent] = twilio.sent                  # the form fields of each accepted create
        assert sent["To"] == "+31612345678"

and post the webhooks a test sends the hub, signed as Twilio signs them (for the hub's
public URL, ``HUB_BASE_URL``, which is what the hub checks against)::

    form = twilio.inbound_form(sender="+31612345678", body="Hello")
    response = await twilio.post(client, "/api/sms/inbound", form, public_url=settings.base_url)
    form = twilio.status_form(sid=outbox_row.provider_id, status="delivered")
    response = await twilio.post(client, "/api/sms/status", form, public_url=settings.base_url)

``python -m tests.fakes.twilio [port]`` serves one on its own, for a hub started by hand: it
prints the HUB_TWILIO_* settings to start the hub with and each text it accepts.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

import httpx
from twilio.request_validator import RequestValidator

from hub.messages.segments import count_segments

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "stand-in-auth-token-0123456789ab"
FROM_NUMBER = "+3197010000001"

_sids = itertools.count(1)


def new_sid(prefix: str = "SM") -> str:
    """A Twilio-shaped SID: two letters and 32 hex digits."""
    return f"{prefix}{secrets.token_hex(12)}{next(_sids):08x}"


@dataclass(frozen=True)
class Answer:
    """What the stand-in answers to the next create: an HTTP status and, for errors, a Twilio
    error code (None: a body that is not Twilio's JSON, as a proxy's 503 page would be)."""

    status: int
    code: int | None = None
    message: str = "Refused by the stand-in"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]
    authorized: bool
    answered: int


@dataclass
class TwilioStandIn:
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    from_number: str = FROM_NUMBER
    requests: list[RecordedRequest] = field(default_factory=list)
    _answers: deque[Answer] = field(default_factory=deque)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, port: int = 0) -> TwilioStandIn:
        """Serve on 127.0.0.1:``port`` (a free one when 0) in a thread of its own."""
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                stand_in._handle(self)

            def do_GET(self) -> None:
                stand_in._reply(self, 405, {"code": 20004, "message": "Method not allowed"})

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> TwilioStandIn:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL to give the SDK (``HUB_TWILIO_API_BASE``)."""
        assert self._server is not None, "start the stand-in first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def settings(self) -> dict[str, Any]:
        """The hub settings that point the SMS channel at this stand-in."""
        return {
            "twilio_account_sid": self.account_sid,
            "twilio_auth_token": self.auth_token,
            "twilio_from_number": self.from_number,
            "twilio_api_base": self.url,
        }

    # -- what the next creates answer ------------------------------------------------------

    def fail_next(
        self, status: int, *, code: int | None = None, message: str = "", times: int = 1
    ) -> None:
        """Answer the next ``times`` creates with an error: ``code`` gives Twilio's JSON error
        body (code, message, more_info, status); without it the body is plain text."""
        with self._lock:
            for _ in range(times):
                self._answers.append(Answer(status, code, message or f"Stand-in error {code}"))

    @property
    def sent(self) -> list[dict[str, str]]:
        """The form fields of every create that was accepted (201), in order."""
        return [r.form for r in self.requests if r.answered == 201]

    # -- webhooks signed as Twilio signs them ----------------------------------------------

    def signature(self, url: str, form: dict[str, str]) -> str:
        """``X-Twilio-Signature`` for a POST of ``form`` to ``url``, by the SDK's own validator."""
        return str(RequestValidator(self.auth_token).compute_signature(url, form))

    def signature_headers(self, url: str, form: dict[str, str]) -> dict[str, str]:
        return {"X-Twilio-Signature": self.signature(url, form)}

    async def post(
        self,
        client: httpx.AsyncClient,
        path: str,
        form: dict[str, str],
        *,
        public_url: str,
        signed_for: str | None = None,
    ) -> httpx.Response:
        """POST ``form`` to the hub at ``path`` as Twilio does: form-encoded, signed for the
        hub's public URL (``public_url`` + ``path``) unless ``signed_for`` says otherwise."""
        url = signed_for or public_url.rstrip("/") + path
        return await client.post(path, data=form, headers=self.signature_headers(url, form))

    def inbound_form(
        self, *, sender: str, body: str, sid: str | None = None, to: str | None = None
    ) -> dict[str, str]:
        """The fields Twilio posts to a number's messaging webhook for an incoming text."""
        message_sid = sid or new_sid()
        return {
            "ToCountry": "NL",
            "SmsMessageSid": message_sid,
            "NumMedia": "0",
            "SmsSid": message_sid,
            "SmsStatus": "received",
            "Body": body,
            "To": to or self.from_number,
            "NumSegments": "1",
            "MessageSid": message_sid,
            "AccountSid": self.account_sid,
            "From": sender,
            "ApiVersion": "2010-04-01",
        }

    def status_form(
        self, *, sid: str, status: str, to: str = "+31612345678", error_code: int | None = None
    ) -> dict[str, str]:
        """The fields Twilio posts to a message's status callback URL."""
        form = {
            "SmsSid": sid,
            "SmsStatus": status,
            "MessageStatus": status,
            "To": to,
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": self.from_number,
            "ApiVersion": "2010-04-01",
        }
        if error_code is not None:
            form["ErrorCode"] = str(error_code)
        return form

    # -- the Messages API ------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode()
        form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        authorized = self._authorized(handler.headers.get("Authorization", ""))
        expected = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        with self._lock:
            answer = self._answers.popleft() if self._answers and authorized else None
        body: dict[str, Any] | None
        if not authorized:
            status, body = 401, _error(20003, "Authentication Error - invalid username", 401)
        elif handler.path != expected:
            status, body = 404, _error(20404, "The requested resource was not found", 404)
        elif answer is not None:
            status = answer.status
            body = _error(answer.code, answer.message, answer.status) if answer.code else None
        elif not form.get("To") or not form.get("Body"):
            status, body = 400, _error(21604, "A 'To' phone number and a 'Body' are required", 400)
        else:
            status, body = 201, self._resource(form)
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    "POST", handler.path, dict(handler.headers), form, authorized, status
                )
            )
        if body is None:
            handler.send_response(status)
            handler.send_header("Content-Type", "text/plain")
            payload = b"Service Unavailable"
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        self._reply(handler, status, body)

    def _authorized(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return secrets.compare_digest(f"{user}:{password}", f"{self.account_sid}:{self.auth_token}")

    def _resource(self, form: dict[str, str]) -> dict[str, Any]:
        sid = new_sid()
        return {
            "sid": sid,
            "account_sid": self.account_sid,
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "to": form["To"],
            "from": form.get("From"),
            "body": form["Body"],
            "status": "queued",
            "direction": "outbound-api",
            "num_segments": str(count_segments(form["Body"]).segments),
            "num_media": "0",
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "api_version": "2010-04-01",
            "date_created": "Sat, 28 Nov 2026 12:00:00 +0000",
            "date_updated": "Sat, 28 Nov 2026 12:00:00 +0000",
            "date_sent": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"
            },
        }

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)


def _error(code: int | None, message: str, status: int) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def main() -> None:
    """Serve a stand-in until interrupted, printing the settings that point a hub at it and
    each text it accepts (``python -m tests.fakes.twilio [port]``), for trying the SMS
    channel on a running hub."""
    import sys
    import time

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    stand_in = TwilioStandIn()
    stand_in.start(port=port)
    for name, value in stand_in.settings().items():
        print(f"HUB_{name.upper()}={value}", flush=True)
    shown = 0
    try:
        while True:
            time.sleep(0.2)
            for form in stand_in.sent[shown:]:
                print(f"text to {form.get('To')}: {form.get('Body')!r}", flush=True)
            shown = len(stand_in.sent)
    except KeyboardInterrupt:
        stand_in.stop()


if __name__ == "__main__":
    main()
