"""How a webhook request is signed, in the style of the Standard Webhooks specification.

Every request carries three headers:

- ``Webhook-Id``: the delivery's id, the same on every retry (receivers dedupe on it);
- ``Webhook-Timestamp``: whole seconds since the Unix epoch when this attempt was sent
  (receivers should refuse a timestamp more than five minutes from their clock);
- ``Webhook-Signature``: ``v1=`` followed by the standard base64 of
  HMAC-SHA256(key, ``<Webhook-Id>.<Webhook-Timestamp>.<body>``), where ``body`` is the
  exact bytes of the request body and ``key`` is the base64-decoded part of the
  subscription's secret after its ``whsec_`` prefix.

The scheme is versioned (``v1``) so that a later scheme can be sent beside it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SCHEME = "v1"


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def signing_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, *, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``Webhook-Signature`` header value for one request."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return f"{SCHEME}=" + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, *, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/cloudevents+json; charset=utf-8",
        "Webhook-Id": webhook_id,
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": signature(
            secret, webhook_id=webhook_id, timestamp=timestamp, body=body
        ),
    }
