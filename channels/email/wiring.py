"""The email channel's adapters, as the settings call for them (registered by ``hub.app``)."""

from __future__ import annotations

from channels.email.adapter import SmtpAdapter
from hub.config import Settings
from hub.db import Database
from hub.ports import ChannelAdapter


def adapters(settings: Settings, database: Database) -> list[ChannelAdapter]:
    """The SMTP adapter when HUB_SMTP_HOST is set; otherwise none (the development outbox
    keeps the mail)."""
    if not settings.smtp_host:
        return []
    return [SmtpAdapter(settings)]
