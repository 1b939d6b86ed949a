"""The sms channel's adapters, as the settings call for them (registered by ``hub.app``).

Twilio takes over from the development outbox once ``HUB_TWILIO_ACCOUNT_SID`` is set; the
auth token and the sending number must then be set too.
"""

from __future__ import annotations

from channels.sms.adapter import TwilioSmsAdapter
from hub.config import Settings
from hub.db import Database
from hub.ports import ChannelAdapter


class TwilioSettingsMissing(RuntimeError):
    """HUB_TWILIO_ACCOUNT_SID is set without the settings that must come with it."""


def adapters(settings: Settings, database: Database) -> list[ChannelAdapter]:
    if not settings.twilio_account_sid:
        return []
    if settings.twilio_auth_token is None or not settings.twilio_from_number:
        raise TwilioSettingsMissing(
            "HUB_TWILIO_ACCOUNT_SID is set: set HUB_TWILIO_AUTH_TOKEN and "
            "HUB_TWILIO_FROM_NUMBER too (or unset it to keep texts in the development outbox)."
        )
    return [
        TwilioSmsAdapter(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            sender=settings.twilio_from_number,
            base_url=settings.base_url,
            database=database,
            api_base=settings.twilio_api_base,
            default_region=settings.sms_default_region,
        )
    ]
