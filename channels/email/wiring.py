"""The email channel's adapters, as the settings call for them (registered by ``hub.app``)."""

from __future__ import annotations

from hub.config import Settings
from hub.db import Database
from hub.ports import ChannelAdapter


def adapters(settings: Settings, database: Database) -> list[ChannelAdapter]:
    return []
