"""The demo data gives every screen and endpoint something real to show."""

from __future__ import annotations

import httpx
from sqlmodel import select

from hub.db import Database
from hub.demo import load_demo
from hub.models import Case, Mandate, Party
from journeys.catalog import load_catalog
from tests.builders import bearer, token_for


async def test_demo_covers_every_stage_and_result_of_every_journey(
    database: Database, client: httpx.AsyncClient
) -> None:
    catalog = load_catalog()
    summary = await load_demo(database, catalog)
    assert not summary.already_loaded
    assert len(summary.keys) == 6 and len(summary.staff) >= 7
    again = await load_demo(database, catalog)
    assert again.already_loaded

    async with database.session() as session:
        cases = (await session.exec(select(Case))).all()
        jan = (await session.exec(select(Party).where(Party.name == "Jan Jansen"))).one()
        mandates = (await session.exec(select(Mandate))).all()
    assert len(mandates) == 1
    for definition in catalog.all():
        mine = [c for c in cases if c.journey_id == definition.id]
        assert {c.stage for c in mine} >= {s.id for s in definition.stages}, definition.id
        assert {c.result for c in mine if c.result} == {r.id for r in definition.results}
        assert {c.status for c in mine} >= {"open", "closed", "waiting_for_citizen", "suspended"}

    token = await token_for(database, "citizen", jan.id)
    response = await client.get("/api/me/cases", headers=bearer(token))
    assert response.status_code == 200
    portal = response.json()
    assert len({c["agency"] for c in portal}) >= 3
    open_case = next(c for c in portal if c["status"] == "open")
    assert open_case["status_view"]["next"]
    assert open_case["status_view"]["expected_completion"]
    assert open_case["contact"]["agency_name"]
