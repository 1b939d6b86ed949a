"""Durable timers: a citizen's deadline passing becomes the engine's "deadline passed"."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
from sqlmodel import select

from hub.app import build_adapters
from hub.clock import local_today
from hub.db import Database, utcnow
from hub.delivery.worker import Worker
from hub.models import Case, OutboxItem, Timer
from journeys.catalog import load_catalog
from tests.builders import bearer, key_for, make_agency, make_party
from tests.cases.test_routes import open_for


async def test_a_passed_deadline_fires_once_and_the_case_goes_on(
    client: httpx.AsyncClient, database: Database, settings: object
) -> None:
    async with database.session() as session:
        await make_agency(session, "toeslagen", activities=("toeslagen-aanvraag",))
        anna = await make_party(session, "Anna", email="anna@example.nl")
    key = await key_for(database, "toeslagen")
    case = await open_for(client, key, anna)
    asked = await client.post(
        f"/api/cases/{case['id']}/actions",
        json={"kind": "request_information", "what": "Huurcontract"},
        headers=bearer(key),
    )
    assert asked.status_code == 200 and asked.json()["status"] == "waiting_for_citizen"
    async with database.session() as session:
        timer = (await session.exec(select(Timer))).one()
        assert timer.due_at > utcnow() + dt.timedelta(days=7)
        # Time passes: the deadline day is over.
        timer.due_at = utcnow() - dt.timedelta(minutes=1)
        session.add(timer)
        stored = await session.get(Case, uuid.UUID(case["id"]))
        assert stored is not None
        # Time passes: shift the request back so its deadline lies behind us.
        today = local_today("Europe/Amsterdam")
        shifted = {
            "citizen_deadline": (today - dt.timedelta(days=2)).isoformat(),
            "suspended_since": (today - dt.timedelta(days=10)).isoformat(),
            "started_on": (today - dt.timedelta(days=12)).isoformat(),
            "stage_entered_on": (today - dt.timedelta(days=12)).isoformat(),
        }
        stored.state = {**stored.state, **shifted}
        session.add(stored)

    worker = Worker(
        database=database,
        adapters=build_adapters(settings, database),
        catalog=load_catalog(),  # type: ignore[arg-type]
        broker=None,
        timezone="Europe/Amsterdam",
    )
    assert await worker.run_once() >= 1
    await worker.run_once()  # a second round fires nothing again
    async with database.session() as session:
        stored = await session.get(Case, uuid.UUID(case["id"]))
        timers = (await session.exec(select(Timer))).all()
        outbox = (await session.exec(select(OutboxItem))).all()
    assert stored is not None and stored.status == "open"
    assert [t.fired_at is not None for t in timers] == [True]
    events = (await client.get(f"/api/cases/{case['id']}/events", headers=bearer(key))).json()
    assert [e["kind"] for e in events["events"]].count("deadline_passed") == 1
    # Everything the case sent the citizen went out through the outbox to the dev outbox.
    assert outbox and all(item.status == "delivered" for item in outbox)
    assert all(item.provider == "dev-outbox" for item in outbox)


async def test_information_in_time_cancels_the_timer(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.session() as session:
        await make_agency(session, "toeslagen", activities=("toeslagen-aanvraag",))
        anna = await make_party(session, "Anna")
    key = await key_for(database, "toeslagen")
    case = await open_for(client, key, anna)
    path = f"/api/cases/{case['id']}/actions"
    await client.post(path, json={"kind": "request_information", "what": "x"}, headers=bearer(key))
    await client.post(path, json={"kind": "provide_information"}, headers=bearer(key))
    async with database.session() as session:
        timer = (await session.exec(select(Timer))).one()
    assert timer.cancelled_at is not None and timer.fired_at is None
