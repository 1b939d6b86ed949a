from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The test settings without the rate limit, which a hundred replays would reach."""
    return Settings(
        environment="test", data_dir=tmp_path, run_worker=False, rate_limit_per_minute=0
    )
