"""Time-based one-time passwords (RFC 6238), the second factor of staff logins."""

from __future__ import annotations

import binascii
import datetime as dt

import pyotp

ISSUER = "Interaction Hub"


def new_totp_secret() -> str:
    return pyotp.random_base32()


def verify_totp(secret: str, code: str, *, at: dt.datetime | None = None) -> bool:
    """Whether ``code`` is right at ``at`` (now by default), allowing one 30-second step of
    clock drift either way. A code is not remembered: it stays valid for its window."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return False
    try:
        return pyotp.TOTP(secret).verify(code, for_time=at, valid_window=1)
    except (ValueError, binascii.Error):  # a malformed stored secret never lets anyone in
        return False


def provisioning_uri(secret: str, email: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads from a QR code. It holds the secret:
    show it once, never log it."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)
