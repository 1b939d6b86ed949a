"""The email channel's adapters, as the settings call for them (registered by ``hub.app``)."""

from __future__ import annotations

from channels.email.adapter import DevMailAdapter, SmtpAdapter
from hub.config import Settings
from hub.db import Database
from hub.ports import ChannelAdapter


def adapters(settings: Settings, database: Database) -> list[ChannelAdapter]:
    """The SMTP adapter when HUB_SMTP_HOST is set. Without it, in development and test, the
    mail is written as it would be sent into the development mail folder; in production
    the development outbox only records it."""
    if settings.smtp_host:
        return [SmtpAdapter(settings)]
    if settings.environment in ("development", "test"):
        return [DevMailAdapter(settings)]
    return []
