from __future__ import annotations

import pytest

from hub.db import Database
from tests.messages.world import World, make_world


@pytest.fixture
async def world(database: Database) -> World:
    return await make_world(database)
