"""Two agencies with a key each and an open rent-allowance case at toeslagen."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub.config import Settings
from hub.db import Database, utcnow
from tests.builders import key_for, make_agency, make_case, make_party

_ids = itertools.count(1)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # These tests send more requests than the per-key burst allows.
    return Settings(
        environment="test", data_dir=tmp_path, run_worker=False, rate_limit_per_minute=0
    )


@dataclass
class World:
    case_id: uuid.UUID
    reference: str
    toeslagen_key: str
    uwv_key: str


@pytest.fixture
async def world(database: Database) -> World:
    async with database.session() as session:
        await make_agency(session, "toeslagen", activities=("toeslagen-aanvraag",))
        await make_agency(session, "uwv", activities=("uwv-ww",))
        anna = await make_party(session, "Anna", email="anna@example.nl")
        case = await make_case(session, anna, journey="huurtoeslag", agency_id="toeslagen")
    return World(
        case_id=case.id,
        reference=case.reference,
        toeslagen_key=await key_for(database, "toeslagen"),
        uwv_key=await key_for(database, "uwv"),
    )


@pytest.fixture
def cloudevent() -> Callable[..., dict[str, Any]]:
    """A structured-mode event of ``nl.interactionhub.case.<kind>``, each a second later than
    the one before (so events built in order are in order), unless ``time`` is given."""
    start = utcnow()

    def build(
        kind: str, subject: str, data: dict[str, Any] | None = None, **attributes: Any
    ) -> dict[str, Any]:
        number = next(_ids)
        event: dict[str, Any] = {
            "specversion": "1.0",
            "id": f"evt-{number}",
            "source": "urn:nl:toeslagen:zaaksysteem",
            "type": f"nl.interactionhub.case.{kind}",
            "subject": subject,
            "time": (start + dt.timedelta(seconds=number)).isoformat(),
            "datacontenttype": "application/json",
            "data": data or {},
        }
        event.update(attributes)
        return event

    return build
