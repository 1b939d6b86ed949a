"""Per-case reply addresses: ``reply+<token>@<inbound domain>``.

The token names a case and the party it belongs to, signed with the hub's secret key, so a
reply threads onto its case without trusting the From address. It is base32 in lower case:
mail systems may change the case of a local part, and the token survives that. Its layout is
a version byte, the case id (16 bytes), the first 8 bytes of the party id and a 10-byte
HMAC-SHA256 tag over all of that: 35 bytes, 56 characters, so ``reply+<token>`` is 62 octets,
within the 64 that RFC 5321 allows a local part.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import uuid
from dataclasses import dataclass
from hashlib import sha256

LOCAL_PREFIX = "reply+"
VERSION = 1
PARTY_BYTES = 8
TAG_BYTES = 10
TOKEN_BYTES = 1 + 16 + PARTY_BYTES + TAG_BYTES
MAX_LOCAL_PART = 64


@dataclass(frozen=True)
class ReplyToken:
    """What a verified token says: the case, and a fingerprint of the party it was sent to."""

    case_id: uuid.UUID
    party_prefix: bytes

    def binds(self, party_id: uuid.UUID) -> bool:
        """Whether the token was issued for ``party_id``."""
        return hmac.compare_digest(party_id.bytes[:PARTY_BYTES], self.party_prefix)


def _tag(secret: str, payload: bytes) -> bytes:
    mac = hmac.new(secret.encode(), b"hub-reply-token:" + payload, sha256)
    return mac.digest()[:TAG_BYTES]


def make_token(secret: str, *, case_id: uuid.UUID, party_id: uuid.UUID) -> str:
    payload = bytes([VERSION]) + case_id.bytes + party_id.bytes[:PARTY_BYTES]
    raw = payload + _tag(secret, payload)
    return base64.b32encode(raw).decode().rstrip("=").lower()


def reply_address(secret: str, domain: str, *, case_id: uuid.UUID, party_id: uuid.UUID) -> str:
    """The reply address for mail about ``case_id`` sent to ``party_id``."""
    local = LOCAL_PREFIX + make_token(secret, case_id=case_id, party_id=party_id)
    assert len(local) <= MAX_LOCAL_PART
    return f"{local}@{domain}"


def read_token(secret: str, token: str) -> ReplyToken | None:
    """The case and party fingerprint of a genuine token, in any letter case; None for a
    token that is malformed, of an unknown version or not signed with ``secret``."""
    text = token.strip().upper()
    if len(text) != 56 or not text.isalnum():
        return None
    try:
        raw = base64.b32decode(text)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != TOKEN_BYTES or raw[0] != VERSION:
        return None
    payload, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
    if not hmac.compare_digest(tag, _tag(secret, payload)):
        return None
    return ReplyToken(case_id=uuid.UUID(bytes=payload[1:17]), party_prefix=payload[17:])


def token_in(address: str, domain: str) -> str | None:
    """The token part of ``reply+<token>@<domain>``, None for any other address.

    The domain and the prefix compare without regard to letter case."""
    local, at, host = address.strip().strip("<>").rpartition("@")
    if not at or host.lower().rstrip(".") != domain.lower():
        return None
    if not local.lower().startswith(LOCAL_PREFIX):
        return None
    return local[len(LOCAL_PREFIX) :]
