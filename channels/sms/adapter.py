"""Outbound texts through the ``twilio`` SDK's Messages API.

The SDK's async path is used with an HTTP client of our own on ``httpx``, so a send never
blocks the event loop and always has a timeout; its API base is ``HUB_TWILIO_API_BASE`` when
set (a regional edge, or the local stand-in the tests run). Twilio accepting a text is not
its delivery: the adapter reports ``sending`` with the MessageSid, and the final status comes
by the status callback (``channels.sms.routes``). The callback's URL names the outbox row
(``?outbox=<id>``): a status may arrive before the worker has recorded the MessageSid.

What is refused before Twilio is asked, as a permanent failure (the worker then falls back
to the next channel): a recipient that is not a valid phone number, a text longer than
``MAX_SEGMENTS`` parts, and a number that texted STOP.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from sqlmodel import col, select
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from channels.sms import PROVIDER, STATUS_PATH
from hub.db import Database
from hub.errors import InvalidInput
from hub.messages.segments import MAX_SEGMENTS, check_text
from hub.models import DigitalAddress
from hub.parties.phones import InvalidNumber, to_e164
from hub.ports import DeliveryReport, Outbound, TemporaryFailure

log = logging.getLogger("channels.sms")

TIMEOUT_SECONDS = 15.0

# Twilio error codes that say the recipient cannot get this text: another channel may work.
# https://www.twilio.com/docs/api/errors
RECIPIENT_ERRORS = {
    21211: "invalid 'To' number",
    21214: "'To' number cannot be reached",
    21217: "number does not appear to be valid",
    21219: "'To' number not verified for a trial account",
    21401: "invalid phone number",
    21407: "number type does not take texts",
    21408: "texts to the region of the 'To' number are not enabled",
    21421: "invalid phone number",
    21610: "the recipient unsubscribed (texted STOP)",
    21612: "'To' number not reachable by text",
    21614: "'To' number is not a mobile number",
    21617: "text longer than 1600 characters",
    21635: "'To' number is a landline",
}

# A stray TWILIO_REGION or TWILIO_EDGE in the process environment would silently send the
# SDK's requests elsewhere; the hub's HUB_TWILIO_* settings are the only source.
_NO_ENVIRONMENT = {"HUB_TWILIO_SETTINGS": "only"}


class HttpxTwilioClient(AsyncHttpClient):  # type: ignore[misc]  # the SDK ships no types
    """The SDK's async HTTP client interface over an ``httpx.AsyncClient``."""

    def __init__(self, http: httpx.AsyncClient, timeout: float) -> None:
        super().__init__(log, is_async=True, timeout=timeout)
        self.http = http

    async def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the SDK passes it
        allow_redirects: bool = False,
    ) -> Response:
        response = await self.http.request(
            method,
            uri,
            params=params,  # type: ignore[arg-type]
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout or self.timeout,
            follow_redirects=allow_redirects,
        )
        return Response(response.status_code, response.text, response.headers)


class TwilioSmsAdapter:
    """Sends the outbox's texts through Twilio. One short-lived HTTP connection per send:
    texts are few, and nothing is left open between the worker's rounds."""

    channel = "sms"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        sender: str,
        base_url: str,
        database: Database | None = None,
        api_base: str | None = None,
        default_region: str = "NL",
        max_segments: int = MAX_SEGMENTS,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.sender = sender
        self.status_callback = base_url.rstrip("/") + STATUS_PATH
        self.database = database
        self.api_base = api_base.rstrip("/") if api_base else None
        self.default_region = default_region
        self.max_segments = max_segments
        self.timeout = timeout

    async def send(self, message: Outbound) -> DeliveryReport:
        try:
            recipient = to_e164(message.recipient, self.default_region)
        except InvalidNumber as error:
            return self._refused(f"not a valid phone number: {error.detail}")
        try:
            check_text(message.body, max_segments=self.max_segments)
        except InvalidInput as error:
            return self._refused(error.detail)
        if await self._opted_out(recipient):
            return self._refused("the recipient texted STOP; no texts until they text START")
        try:
            sid = await self._create(recipient, message.body, outbox_id=str(message.id))
        except (TwilioRestException, TwilioServiceException) as error:
            return self._failure(error.status, error.code, _error_text(error))
        except httpx.HTTPError as error:
            raise TemporaryFailure(f"Twilio not reachable: {type(error).__name__}") from None
        return DeliveryReport(status="sending", provider=PROVIDER, provider_id=sid)

    async def _create(self, recipient: str, body: str, *, outbox_id: str) -> str:
        async with httpx.AsyncClient(timeout=self.timeout) as http:
            client = Client(
                self.account_sid,
                self.auth_token,
                http_client=HttpxTwilioClient(http, self.timeout),
                environment=_NO_ENVIRONMENT,
            )
            if self.api_base:
                client.api.base_url = self.api_base
            sender: dict[str, Any] = (
                {"messaging_service_sid": self.sender}
                if self.sender.startswith("MG")
                else {"from_": self.sender}
            )
            created = await client.messages.create_async(
                to=recipient,
                body=body,
                status_callback=f"{self.status_callback}?outbox={outbox_id}",
                **sender,
            )
        if not created.sid:
            raise TemporaryFailure("Twilio accepted the text but gave no MessageSid")
        return str(created.sid)

    async def _opted_out(self, recipient: str) -> bool:
        """Whether the number texted STOP since this text was queued (a short read; the
        session is closed again before Twilio is called)."""
        if self.database is None:
            return False
        async with self.database.session() as session:
            found = await session.exec(
                select(DigitalAddress.id)
                .where(DigitalAddress.kind == "phone", DigitalAddress.value == recipient)
                .where(col(DigitalAddress.opted_out_at).is_not(None))
                .limit(1)
            )
            return found.first() is not None

    def _refused(self, detail: str) -> DeliveryReport:
        return DeliveryReport(status="permanent-failure", provider=PROVIDER, detail=detail[:1000])

    def _failure(self, status: int, code: int | None, text: str) -> DeliveryReport:
        """Twilio said no: a permanent failure when it is about the recipient; else retried
        (429 and 5xx will pass; other refusals are the hub's configuration, retried until the
        retry budget ends in technical-failure, so an operator can fix it in the meantime)."""
        if status < 500 and status != 429 and code in RECIPIENT_ERRORS:
            return self._refused(f"Twilio error {code} ({RECIPIENT_ERRORS[code]}): {text}")
        if status in (401, 403, 404):
            log.warning("Twilio refused the hub's credentials or account (HTTP %s)", status)
        raise TemporaryFailure(f"Twilio HTTP {status}, error {code}: {text}"[:1000])


def _error_text(error: TwilioRestException | TwilioServiceException) -> str:
    if isinstance(error, TwilioServiceException):
        return str(error.detail or error.title)
    return str(error.msg).removeprefix("Unable to create record: ")
