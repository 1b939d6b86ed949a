from __future__ import annotations

import pytest

from tests.conftest import POSTGRES_UP


@pytest.fixture(scope="session", autouse=True)
def _postgres_created_outside_the_event_loop(request: pytest.FixtureRequest) -> None:
    # The shared ``postgres_database_url`` fixture calls asyncio.run(); first requested from
    # inside the async ``database`` fixture it would run in a running loop and fail.
    if POSTGRES_UP:
        request.getfixturevalue("postgres_database_url")
