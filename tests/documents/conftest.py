from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import Settings
from hub.db import Database
from tests.messages.world import World, make_world

# Small, so that the size limit can be passed without sending megabytes.
MAX_UPLOAD_BYTES = 100_000


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        environment="test", data_dir=tmp_path, run_worker=False, max_upload_bytes=MAX_UPLOAD_BYTES
    )


@pytest.fixture
async def world(database: Database) -> World:
    return await make_world(database)
