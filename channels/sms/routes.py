"""Twilio's webhooks: inbound texts and delivery status callbacks, signature-checked.

Both take the form Twilio posts and check ``X-Twilio-Signature`` with the SDK's
``RequestValidator`` against the PUBLIC URL — ``HUB_BASE_URL`` and the webhook's path (and
the query string Twilio called, if any) — not the URL the request arrived at, which a
proxy in front of the hub changes. A missing or wrong signature is refused with 403 and
logged, without the body. The endpoints are off (404) while ``HUB_TWILIO_AUTH_TOKEN`` is
unset: there is nothing to check a signature with.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from starlette.datastructures import FormData, UploadFile
from twilio.request_validator import SIGNATURE_HEADER, SIGNATURE_SETTINGS_HEADER, RequestValidator

from channels.sms import INBOUND_PATH, STATUS_PATH
from channels.sms.service import apply_status, receive_text
from hub.config import Settings
from hub.dependencies import BrokerDep, SessionDep, SettingsDep
from hub.errors import Forbidden, HubError, InvalidInput, NotFound

log = logging.getLogger("channels.sms")

router = APIRouter(prefix="/api", tags=["sms"])

# Twilio's webhook bodies are a few kilobytes (a text is at most 1,600 characters).
MAX_WEBHOOK_BYTES = 64 * 1024
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


class PayloadTooLarge(HubError):
    status = 413
    title = "Payload too large"
    type_suffix = "payload-too-large"


async def signed_form(request: Request, settings: Settings, path: str) -> FormData:
    """The posted form, once its Twilio signature checks out against the public URL."""
    token = settings.twilio_auth_token
    if token is None:
        raise NotFound("SMS webhooks are off: HUB_TWILIO_AUTH_TOKEN is not set.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_WEBHOOK_BYTES:
        raise PayloadTooLarge(f"A Twilio webhook is at most {MAX_WEBHOOK_BYTES} bytes.")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_WEBHOOK_BYTES:
            raise PayloadTooLarge(f"A Twilio webhook is at most {MAX_WEBHOOK_BYTES} bytes.")
    form_encoded = request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    )
    fields: list[tuple[str, str | UploadFile]] = []
    if form_encoded:
        fields.extend(parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True))
    form = FormData(fields)
    url = settings.base_url.rstrip("/") + path
    if request.url.query:
        url += "?" + request.url.query
    signature = request.headers.get(SIGNATURE_HEADER)
    if request.headers.get(SIGNATURE_SETTINGS_HEADER):
        # Signed with a Webhooks Rule's shared key, for which the hub has no setting.
        refusal = "signed with a shared key"
    elif not signature:
        refusal = "no signature"
    elif not RequestValidator(token.get_secret_value()).validate(url, form, signature):
        refusal = "a wrong signature"
    else:
        return form
    client = request.client.host if request.client else "unknown"
    log.warning("Twilio webhook %s from %s refused: %s", path, client, refusal)
    raise Forbidden(f"This request has {refusal}; it does not come from the hub's Twilio account.")


# The webhooks take Twilio's signed form, read by hand (the signature covers every field).
WEBHOOK_REFUSALS: dict[int | str, dict[str, Any]] = {
    403: {"description": "No X-Twilio-Signature, or not one by the hub's Twilio account."},
    404: {"description": "HUB_TWILIO_AUTH_TOKEN is not set: the webhooks are off."},
    413: {"description": f"The form is larger than {MAX_WEBHOOK_BYTES} bytes."},
    422: {"description": "The form lacks the fields Twilio always sends."},
}


@router.post(INBOUND_PATH.removeprefix("/api"), response_class=Response, responses=WEBHOOK_REFUSALS)
async def inbound_text(
    request: Request, session: SessionDep, settings: SettingsDep, broker: BrokerDep
) -> Response:
    """Twilio's messaging webhook: a text to the hub's number. Answered with empty TwiML
    (the hub answers, if it does, by its own outbound text)."""
    form = await signed_form(request, settings, INBOUND_PATH)
    sid = str(form.get("MessageSid") or form.get("SmsSid") or "")
    sender = str(form.get("From") or "")
    if not sid or not sender:
        raise InvalidInput("A Twilio message webhook carries MessageSid and From.")
    await receive_text(
        session,
        sid=sid,
        sender=sender,
        body=str(form.get("Body") or ""),
        region=settings.sms_default_region,
        meta={"num_media": str(form.get("NumMedia") or "0")},
        broker=broker,
    )
    return Response(EMPTY_TWIML, media_type="text/xml")


@router.post(
    STATUS_PATH.removeprefix("/api"),
    status_code=204,
    response_class=Response,
    responses=WEBHOOK_REFUSALS,
)
async def status_callback(
    request: Request, session: SessionDep, settings: SettingsDep, broker: BrokerDep
) -> Response:
    """Twilio's status callback for a text the hub sent."""
    form = await signed_form(request, settings, STATUS_PATH)
    sid = str(form.get("MessageSid") or form.get("SmsSid") or "")
    status = str(form.get("MessageStatus") or form.get("SmsStatus") or "")
    if not sid or not status:
        raise InvalidInput("A Twilio status callback carries MessageSid and MessageStatus.")
    code = str(form.get("ErrorCode") or "")
    try:  # the row the hub sent it from, named in the callback URL it gave Twilio
        outbox_id = uuid.UUID(request.query_params.get("outbox", ""))
    except ValueError:
        outbox_id = None
    await apply_status(
        session,
        sid=sid,
        status=status,
        error_code=int(code) if code.isdigit() else None,
        outbox_id=outbox_id,
        broker=broker,
    )
    return Response(status_code=204)
