"""Phone numbers: parsed and validated with ``phonenumbers``, kept as E.164.

A number written without a country code (``06 1234 5678``) is read in the hub's default
region (``HUB_SMS_DEFAULT_REGION``, NL unless set); ``+31 6 1234 5678`` and ``0031…`` work
anywhere. Only numbers the numbering plan of their country allows are accepted.
"""

from __future__ import annotations

import phonenumbers

from hub.errors import InvalidInput


class InvalidNumber(InvalidInput):
    """Not a phone number a text can be addressed to."""


def to_e164(raw: str, region: str = "NL") -> str:
    """``raw`` as an E.164 number (``+31612345678``); :class:`InvalidNumber` (422) otherwise.

    Spaces, dashes, dots and brackets are allowed in ``raw``; letters are not.
    """
    text = raw.strip()
    if not text or len(text) > 40 or any(c.isalpha() for c in text):
        raise InvalidNumber("Give a phone number such as +31612345678 or 06 12345678.")
    try:
        number = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException:
        raise InvalidNumber(
            "That is not a phone number; give one such as +31612345678 or 06 12345678."
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidNumber(
            "That phone number does not exist in its country's numbering plan; check it, "
            "or give it with the country code (+31…)."
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def e164_or_none(raw: str, region: str = "NL") -> str | None:
    """Like :func:`to_e164`, but None for what is not a valid number (a short code, a
    sender name)."""
    try:
        return to_e164(raw, region)
    except InvalidNumber:
        return None
