"""POST /api/cloudevents on SQLite and PostgreSQL: back-office events move cases as the
journey allows, once and in order, and only the agency's own cases."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI
from sqlmodel import col, select

from hub.db import Database, utcnow
from hub.models import AccessLogEntry, Case, CaseEvent, CaseParticipant
from tests.backoffice.conftest import World
from tests.builders import bearer

Event = Callable[..., dict[str, Any]]
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"


async def push(
    client: httpx.AsyncClient, key: str, event: Any, content_type: str = STRUCTURED
) -> httpx.Response:
    return await client.post(
        "/api/cloudevents",
        content=json.dumps(event),
        headers={**bearer(key), "Content-Type": content_type},
    )


async def case_and_log(database: Database, case_id: uuid.UUID) -> tuple[Case, list[CaseEvent]]:
    async with database.session() as session:
        case = await session.get(Case, case_id)
        assert case is not None
        events = (
            await session.exec(
                select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(col(CaseEvent.seq))
            )
        ).all()
    return case, list(events)


async def test_each_event_type_takes_its_journey_action_as_the_agency(
    client: httpx.AsyncClient, database: Database, world: World, cloudevent: Event
) -> None:
    subject = str(world.case_id)
    steps: list[tuple[str, dict[str, Any], str, str, str]] = [
        ("stage-reached", {"stage": "assessment"}, "assessment", "open", "stage_entered"),
        ("suspended", {"reason": "Municipality records"}, "assessment", "suspended", "suspended"),
        ("resumed", {}, "assessment", "open", "resumed"),
        ("extended", {"reason": "Complex income", "days": 14}, "assessment", "open", "extended"),
        ("stage-reached", {"stage": "decision"}, "decision", "open", "stage_entered"),
        ("decided", {"result": "granted"}, "decision", "closed", "decided"),
    ]
    for event_type, data, stage, status, kind in steps:
        event = cloudevent(event_type, subject, data)
        response = await push(client, world.toeslagen_key, event)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["duplicate"] is False and body["id"] == event["id"]
        assert (body["case"]["stage"], body["case"]["status"]) == (stage, status)

        case, log = await case_and_log(database, world.case_id)
        assert (case.stage, case.status) == (stage, status)
        action_event, applied = log[-2], log[-1]
        assert action_event.kind == kind
        assert action_event.actor_kind == applied.actor_kind == "agency"
        assert applied.kind == "backoffice_event" and applied.audience == "staff"
        assert applied.payload["id"] == event["id"]
        assert applied.payload["type"] == event["type"]
        assert "data" not in applied.payload
    assert case.result == "granted" and case.closed_at is not None
    assert [e.payload.get("days") for e in log if e.kind == "extended"] == [14]
    async with database.session() as session:
        changes = (
            await session.exec(select(AccessLogEntry).where(AccessLogEntry.case_id == case.id))
        ).all()
    assert [(c.actor_kind, c.agency_id, c.action) for c in changes] == [
        ("agency", "toeslagen", "change")
    ] * len(steps)
    assert all(c.processing_activity_id is not None for c in changes)


async def test_information_requested_waits_for_the_citizen_until_the_date_given(
    client: httpx.AsyncClient, database: Database, world: World, cloudevent: Event
) -> None:
    event = cloudevent(
        "information-requested",
        world.reference,
        {"what": "Your rental contract", "until": "2099-01-31"},
    )
    response = await push(client, world.toeslagen_key, event)
    assert response.status_code == 200, response.text
    case, log = await case_and_log(database, world.case_id)
    assert case.status == "waiting_for_citizen"
    assert case.state["information_requested"] == "Your rental contract"
    assert case.state["citizen_deadline"] == "2099-01-31"
    assert log[-2].kind == "information_requested"


async def test_binary_mode_reads_the_attributes_from_ce_headers(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    amsterdam_winter = dt.timezone(dt.timedelta(hours=1))
    time = utcnow().astimezone(amsterdam_winter).isoformat(timespec="seconds")
    response = await client.post(
        "/api/cloudevents",
        content=json.dumps({"stage": "assessment"}),
        headers={
            **bearer(world.toeslagen_key),
            "Content-Type": "application/json",
            "ce-specversion": "1.0",
            "ce-id": "binary-1",
            "ce-source": "urn:nl:toeslagen:zaaksysteem",
            "ce-type": "nl.interactionhub.case.stage-reached",
            "ce-subject": world.reference,
            "ce-time": time,
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["case"]["stage"] == "assessment"
    case, log = await case_and_log(database, world.case_id)
    assert case.stage == "assessment"
    assert log[-1].payload["time"] == time

    missing = await client.post(
        "/api/cloudevents",
        content=json.dumps({"stage": "decision"}),
        headers={**bearer(world.toeslagen_key), "Content-Type": "application/json"},
    )
    assert missing.status_code == 422
    assert set(missing.json()["missing"]) == {"specversion", "id", "source", "type"}


async def test_a_batch_answers_per_event_and_applies_the_ones_that_pass(
    app: FastAPI, client: httpx.AsyncClient, database: Database, world: World, cloudevent: Event
) -> None:
    subject = str(world.case_id)
    assessment = cloudevent("stage-reached", subject, {"stage": "assessment"})
    early_decision = cloudevent("decided", subject, {"result": "granted"})
    batch = [
        assessment,
        early_decision,
        cloudevent("archived", subject),
        {"specversion": "1.0", "type": "nl.interactionhub.case.resumed"},
        cloudevent("stage-reached", subject, {"stage": "decision"}),
    ]
    _, before = await case_and_log(database, world.case_id)
    async with app.state.broker.follow(world.case_id) as follower:
        response = await push(client, world.toeslagen_key, batch, BATCH)
        published: list[Any] = []
        while (item := follower.get_nowait()) is not None:
            published.append(item)
    assert response.status_code == 200, response.text
    answers = response.json()
    assert [a["status"] for a in answers] == [200, 409, 422, 422, 200]
    assert answers[1]["id"] == early_decision["id"]
    assert answers[1]["problem"]["stage"] == "assessment"
    assert answers[1]["problem"]["action"] == "decide"
    case, log = await case_and_log(database, world.case_id)
    assert case.stage == "decision" and case.status == "open"
    assert [e.kind for e in log].count("decided") == 0
    # Those following the case live saw what was stored, and nothing of the refused events.
    assert [(e.seq, e.kind) for e in published] == [
        (e.seq, e.kind) for e in log if e.seq > before[-1].seq
    ]

    # The refused event left no receipt behind: sent again now that it is allowed, it applies.
    del early_decision["time"]
    again = await push(client, world.toeslagen_key, early_decision)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is False
    assert again.json()["case"]["status"] == "closed"


async def test_a_repeated_event_is_applied_once(
    client: httpx.AsyncClient, database: Database, world: World, cloudevent: Event
) -> None:
    event = cloudevent("stage-reached", str(world.case_id), {"stage": "assessment"})
    first = await push(client, world.toeslagen_key, event)
    assert first.status_code == 200 and first.json()["duplicate"] is False
    _, log_before = await case_and_log(database, world.case_id)

    repeat = await push(client, world.toeslagen_key, event)
    assert repeat.status_code == 200, repeat.text
    assert repeat.json()["duplicate"] is True
    assert repeat.json()["case"]["stage"] == "assessment"
    case, log_after = await case_and_log(database, world.case_id)
    assert len(log_after) == len(log_before) and case.stage == "assessment"


async def test_an_action_the_journey_does_not_allow_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, database: Database, world: World, cloudevent: Event
) -> None:
    _, log_before = await case_and_log(database, world.case_id)
    for event in (
        cloudevent("decided", str(world.case_id), {"result": "granted"}),
        cloudevent("stage-reached", str(world.case_id), {"stage": "decision"}),
        cloudevent("resumed", str(world.case_id)),
    ):
        response = await push(client, world.toeslagen_key, event)
        assert response.status_code == 409, response.text
        problem = response.json()
        assert response.headers["content-type"].startswith("application/problem+json")
        assert problem["stage"] == "received"
        assert problem["action"] in ("decide", "advance", "resume")
    case, log_after = await case_and_log(database, world.case_id)
    assert (case.stage, case.status) == ("received", "open")
    assert len(log_after) == len(log_before)


async def test_only_the_agency_that_owns_or_takes_part_in_the_case_may_move_it(
    client: httpx.AsyncClient, database: Database, world: World, cloudevent: Event
) -> None:
    event = cloudevent("stage-reached", str(world.case_id), {"stage": "assessment"})
    foreign = await push(client, world.uwv_key, event)
    assert foreign.status_code == 404
    unknown = await push(
        client, world.uwv_key, {**event, "id": "other", "subject": str(uuid.uuid4())}
    )
    assert unknown.status_code == 404
    assert foreign.json()["detail"] == unknown.json()["detail"]
    case, _ = await case_and_log(database, world.case_id)
    assert case.stage == "received"

    async with database.session() as session:
        session.add(CaseParticipant(case_id=world.case_id, agency_id="uwv"))
    joined = await push(client, world.uwv_key, event)
    assert joined.status_code == 200, joined.text
    assert joined.json()["case"]["stage"] == "assessment"


async def test_invalid_events_are_refused_with_a_clear_problem(
    client: httpx.AsyncClient, database: Database, world: World, cloudevent: Event
) -> None:
    subject = str(world.case_id)
    cases: list[tuple[Any, str]] = [
        (cloudevent("archived", subject), "Unknown event type"),
        ({"specversion": "1.0", "id": "x", "type": "nl.interactionhub.case.resumed"}, "source"),
        (cloudevent("resumed", subject, specversion="0.3"), "specversion"),
        (cloudevent("resumed", subject, time="yesterday"), "RFC 3339"),
        (cloudevent("resumed", subject, time="2026-11-28T10:00:00"), "RFC 3339"),
        (cloudevent("stage-reached", subject, {}), "not valid"),
        (cloudevent("extended", subject, {"reason": "x", "days": 0}), "not valid"),
        (cloudevent("resumed", subject, data=["not", "an", "object"]), "JSON object"),
        (cloudevent("resumed", None), "subject"),
        ([cloudevent("resumed", subject)], "JSON object"),
    ]
    for event, words in cases:
        response = await push(client, world.toeslagen_key, event)
        assert response.status_code == 422, (event, response.text)
        assert words in response.json()["detail"], response.json()
    no_stage = await push(client, world.toeslagen_key, cloudevent("stage-reached", subject))
    assert [e["loc"] for e in no_stage.json()["errors"]] == [["data", "stage"]]
    broken = await client.post(
        "/api/cloudevents",
        content=b"{not json",
        headers={**bearer(world.toeslagen_key), "Content-Type": STRUCTURED},
    )
    assert broken.status_code == 422 and "not valid JSON" in broken.json()["detail"]
    case, _ = await case_and_log(database, world.case_id)
    assert (case.stage, case.status) == ("received", "open")


async def test_an_event_older_than_the_last_applied_is_refused_as_out_of_order(
    client: httpx.AsyncClient, database: Database, world: World, cloudevent: Event
) -> None:
    subject = str(world.case_id)
    earlier = cloudevent("suspended", subject, {"reason": "Waiting for a document"})
    later = cloudevent("stage-reached", subject, {"stage": "assessment"})
    assert (await push(client, world.toeslagen_key, later)).status_code == 200

    delayed = await push(client, world.toeslagen_key, earlier)
    assert delayed.status_code == 409, delayed.text
    assert "out of order" in delayed.json()["detail"]
    case, log = await case_and_log(database, world.case_id)
    assert (case.stage, case.status) == ("assessment", "open")
    assert [e.kind for e in log].count("suspended") == 0

    # Refused, not recorded: the same event with a current time is applied.
    current = {**earlier, "time": cloudevent("resumed", subject)["time"]}
    assert (await push(client, world.toeslagen_key, current)).json()["case"]["status"] == (
        "suspended"
    )


async def test_an_unauthenticated_push_is_refused(
    client: httpx.AsyncClient, database: Database, world: World, cloudevent: Event
) -> None:
    event = cloudevent("stage-reached", str(world.case_id), {"stage": "assessment"})
    anonymous = await client.post(
        "/api/cloudevents", content=json.dumps(event), headers={"Content-Type": STRUCTURED}
    )
    assert anonymous.status_code == 401
    wrong = await push(client, "not-a-key", event)
    assert wrong.status_code == 401
    case, _ = await case_and_log(database, world.case_id)
    assert case.stage == "received"


async def test_the_same_event_sent_twice_at_once_is_applied_once(
    client: httpx.AsyncClient, database: Database, world: World, cloudevent: Event
) -> None:
    event = cloudevent("stage-reached", str(world.case_id), {"stage": "assessment"})
    answers = await asyncio.gather(*(push(client, world.toeslagen_key, event) for _ in range(2)))
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert sorted(a.json()["duplicate"] for a in answers) == [False, True]
    _, log = await case_and_log(database, world.case_id)
    assert [e.kind for e in log].count("backoffice_event") == 1
