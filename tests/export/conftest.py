from __future__ import annotations

import pytest

from hub.config import Settings
from hub.db import Database
from tests.export.world import World, make_world


@pytest.fixture
async def world(database: Database, settings: Settings) -> World:
    return await make_world(database, settings.document_store)
