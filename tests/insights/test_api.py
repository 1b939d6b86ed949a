"""The insights API: the agency's own figures, as JSON and as CSV."""

from __future__ import annotations

import csv
import io

import httpx

from hub.db import Database
from tests.builders import bearer, key_for, make_staff, token_for
from tests.insights.test_figures import build

PERIOD = {"from": "2026-03-02", "to": "2026-03-29"}


async def test_an_agency_system_reads_its_figures_as_json_and_csv(
    database: Database, client: httpx.AsyncClient
) -> None:
    async with database.session() as session:
        await build(session)
    key = await key_for(database, "toeslagen")

    answer = await client.get("/api/insights", params=PERIOD, headers=bearer(key))
    assert answer.status_code == 200
    body = answer.json()
    assert (body["agency"], body["period_from"], body["period_to"]) == (
        "toeslagen",
        "2026-03-02",
        "2026-03-29",
    )
    rent = body["journeys"][0]
    assert (rent["journey"], rent["cases_opened"], rent["closed_within_norm"]) == (
        "huurtoeslag",
        4,
        1,
    )
    assert body["notices"]["not_sent_no_consent"] == 1

    table = await client.get("/api/insights.csv", params=PERIOD, headers=bearer(key))
    assert table.status_code == 200
    assert table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    value = {(r["section"], r["journey"], r["item"], r["measure"]): r["value"] for r in rows}
    assert value[("journey", "huurtoeslag", "", "contacts_per_case")] == "2.25"
    assert value[("stage_now", "huurtoeslag", "assessment", "cases")] == "2"
    assert value[("first_response", "", "sms", "mean_minutes")] == "59.0"
    assert value[("channel_mix", "", "2026-03-02 webchat", "messages")] == "3"
    assert value[("notices", "", "", "escalated")] == "1"


async def test_staff_read_their_own_agency_only(
    database: Database, client: httpx.AsyncClient
) -> None:
    async with database.session() as session:
        await build(session)
        staff = await make_staff(session, "uwv")
    token = await token_for(database, "staff", staff.id)

    own = await client.get("/api/insights", params=PERIOD, headers=bearer(token))
    assert own.status_code == 200
    assert own.json()["agency"] == "uwv"
    assert [j["journey"] for j in own.json()["journeys"]] == ["vraag", "ww-uitkering"]

    other = await client.get(
        "/api/insights", params={**PERIOD, "agency": "toeslagen"}, headers=bearer(token)
    )
    assert other.status_code == 403
    backwards = await client.get(
        "/api/insights", params={"from": "2026-03-29", "to": "2026-03-02"}, headers=bearer(token)
    )
    assert backwards.status_code == 422
    anonymous = await client.get("/api/insights", params=PERIOD)
    assert anonymous.status_code == 401
