"""The letter channel's adapters, as the settings call for them (registered by ``hub.app``).

Letters need no provider settings: they always go to the print queue, where a
print-and-post provider or the agency's mail room collects them.
"""

from __future__ import annotations

from channels.letter.adapter import LetterAdapter
from hub.config import Settings
from hub.db import Database
from hub.ports import ChannelAdapter


def adapters(settings: Settings, database: Database) -> list[ChannelAdapter]:
    return [LetterAdapter(settings, database)]
