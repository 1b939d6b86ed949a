"""GET /metrics: the figures move when a user would expect them to, on both databases."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families

from hub.app import create_app
from hub.config import Settings
from hub.db import Database, utcnow
from hub.events.service import Actor, append_event
from hub.models import Document, NoticeJob, OutboxItem, Timer
from hub.observability.metrics import FinishedCounts, read_database_figures
from tests.builders import bearer, make_agency, make_case, make_party, token_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_requests_are_counted_by_route_template_never_by_raw_path(
    client: httpx.AsyncClient,
) -> None:
    case_id = uuid.uuid4()
    labels = {"method": "GET", "route": "/api/cases/{case_id}", "status": "401"}
    before = value(await scrape(client), "hub_http_requests_total", **labels)

    for _ in range(3):
        assert (await client.get(f"/api/cases/{case_id}")).status_code == 401
    await client.get("/no/such/page/123456")

    response = await client.get("/metrics")
    samples = await scrape(client)
    assert value(samples, "hub_http_requests_total", **labels) == before + 3
    timed = {"method": "GET", "route": "/api/cases/{case_id}"}
    assert value(samples, "hub_http_request_duration_seconds_count", **timed) >= 3
    assert value(samples, "hub_http_requests_total", method="GET", route="unmatched", status="404")
    assert str(case_id) not in response.text and "123456" not in response.text


async def test_a_login_code_shows_in_the_outbox_depth_until_delivered(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.session() as session:
        await make_party(session, "Jan Jansen", email="jan@example.nl")
    before = await scrape(client)
    assert value(before, "hub_outbox_depth") == 0
    assert value(before, "hub_outbox_oldest_pending_age_seconds") == 0

    asked = await client.post("/api/auth/citizen/code", json={"address": "jan@example.nl"})
    assert asked.status_code == 202

    after = await scrape(client)
    assert value(after, "hub_outbox_depth") == 1
    assert value(after, "hub_deliveries", channel="email", status="pending") == 1
    assert 0 <= value(after, "hub_outbox_oldest_pending_age_seconds") < 60


async def test_due_timers_and_notice_jobs_are_read_from_the_database(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.session() as session:
        await make_agency(session, "toeslagen")
        session.add(Timer(kind="deadline", due_at=utcnow() - dt.timedelta(minutes=5)))
        session.add(Timer(kind="deadline", due_at=utcnow() + dt.timedelta(days=1)))
        session.add(
            Timer(kind="deadline", due_at=utcnow() - dt.timedelta(hours=1), fired_at=utcnow())
        )
        document = Document(
            filename="notices.ndjson",
            content_type="application/x-ndjson",
            size=0,
            sha256="0" * 64,
            storage_key="x",
            source="upload",
            uploaded_by_kind="agency",
        )
        session.add(document)
        await session.flush()
        for status in ("queued", "queued", "running"):
            session.add(
                NoticeJob(
                    agency_id="toeslagen", format="ndjson", document_id=document.id, status=status
                )
            )

    samples = await scrape(client)
    assert value(samples, "hub_timers_due") == 1
    assert 290 <= value(samples, "hub_timers_oldest_due_age_seconds") < 400
    assert value(samples, "hub_notice_jobs", status="queued") == 2
    assert value(samples, "hub_notice_jobs", status="running") == 1
    assert value(samples, "hub_notice_jobs", status="failed") == 0


async def test_published_events_are_counted(
    client: httpx.AsyncClient, database: Database, app: object
) -> None:
    async with database.session() as session:
        await make_agency(session, "toeslagen")
        party = await make_party(session, "Jan Jansen")
        case = await make_case(session, party)
    before = await scrape(client)
    broker = app.state.broker  # type: ignore[attr-defined]

    async with database.session() as session:
        await append_event(
            session, case_id=case.id, kind="advanced", actor=Actor.system(), broker=broker
        )

    after = await scrape(client)
    published = "hub_events_published_total"
    assert value(after, published, kind="advanced") == value(before, published, kind="advanced") + 1
    assert value(after, "hub_case_events_logged") == value(before, "hub_case_events_logged") + 1


async def test_a_metrics_token_is_asked_for_when_set(tmp_path: Path, database: Database) -> None:
    settings = Settings(
        environment="test", data_dir=tmp_path, run_worker=False, metrics_token="s3cret-metrics-tok"
    )
    app = create_app(settings, database=database)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
            refused = await client.get("/metrics")
            assert refused.status_code == 401
            assert refused.headers["content-type"] == "application/problem+json"
            wrong = await client.get("/metrics", headers=bearer("not-the-token"))
            assert wrong.status_code == 401
            samples = await scrape(client, **bearer("s3cret-metrics-tok"))
            assert ("hub_outbox_depth", frozenset()) in samples


async def test_metrics_are_off_in_production_without_a_token(
    tmp_path: Path, database: Database
) -> None:
    settings = Settings(
        environment="production",
        data_dir=tmp_path,
        run_worker=False,
        secret_key="a-production-secret-of-enough-length-0123456789",
    )
    app = create_app(settings, database=database)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
            off = await client.get("/metrics")
            assert off.status_code == 404
            assert "HUB_METRICS_TOKEN" in off.json()["detail"]
            # The request id still comes back, as on every answer.
            assert len(off.headers["x-request-id"]) == 16


async def test_the_request_id_is_taken_from_the_client_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/metrics", headers={"X-Request-ID": "trace-0123456789"})
    assert given.headers["x-request-id"] == "trace-0123456789"
    made = await client.get("/metrics", headers={"X-Request-ID": "short"})
    assert made.headers["x-request-id"] != "short" and len(made.headers["x-request-id"]) == 16


async def test_a_staff_token_does_not_open_metrics_when_a_token_is_set(
    tmp_path: Path, database: Database
) -> None:
    async with database.session() as session:
        await make_agency(session, "toeslagen")
        party = await make_party(session, "Jan Jansen")
    citizen = await token_for(database, "citizen", party.id)
    settings = Settings(
        environment="test", data_dir=tmp_path, run_worker=False, metrics_token="s3cret-metrics-tok"
    )
    app = create_app(settings, database=database)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
            assert (await client.get("/metrics", headers=bearer(citizen))).status_code == 401


async def test_finished_deliveries_are_counted_at_most_so_often_unfinished_ones_always(
    database: Database,
) -> None:
    async with database.session() as session:
        party = await make_party(session, "Jan Jansen", email="jan@example.nl")
    finished = FinishedCounts()

    def row(status: str) -> OutboxItem:
        return OutboxItem(
            party_id=party.id,
            channel="email",
            recipient="jan@example.nl",
            template="reply",
            body="-",
            status=status,
        )

    first = await read_database_figures(database, finished, max_age=3600)
    async with database.session() as session:
        session.add_all([row("delivered"), row("pending")])
    cached = await read_database_figures(database, finished, max_age=3600)
    fresh = await read_database_figures(database, finished, max_age=0)

    assert first.deliveries == {}
    assert cached.deliveries == {("email", "pending"): 1}
    assert fresh.deliveries == {("email", "pending"): 1, ("email", "delivered"): 1}
