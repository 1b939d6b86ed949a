"""Prometheus metrics: what this process counted, and what the database holds right now.

Two kinds of figure, exposed together at ``GET /metrics`` in the text format:

- **Process figures** (requests, their latency, open live sockets, events published) are
  counted in this process. Each ``hub serve`` process exposes its own; Prometheus scrapes
  every process and sums them (``sum without (instance) (…)``). prometheus_client's
  multiprocess mode is not used: the hub runs one uvicorn process per ``hub serve``.
- **Database figures** (outbox depth and age, deliveries by channel and status, timers due,
  notice jobs, events logged) are read from the database at scrape time, so every process
  reports the same value however many there are (take ``max without (instance) (…)``). The
  queries are counts on indexed columns; the one over all deliveries grows with the outbox
  and is the one to watch (see README, "Metrics and logs").
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select

from hub.db import Database, utcnow
from hub.models import CaseEvent, NoticeJob, OutboxItem, Timer

# No ``*_created`` series: they double what is exposed and no dashboard of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# The hub's own registry, not prometheus_client's global one: a test app, or a second app in
# one process, does not collide with anything a library registers there.
REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "hub_http_requests",
    "HTTP requests answered by this process, by method, route template and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "hub_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
LIVE_SOCKETS = Gauge(
    "hub_live_websockets",
    "Authenticated live websockets open on this process.",
    registry=REGISTRY,
)
EVENTS_PUBLISHED = Counter(
    "hub_events_published",
    "Case events this process published to live followers after their commit, by kind.",
    ["kind"],
    registry=REGISTRY,
)

UNMATCHED_ROUTE = "unmatched"


@dataclass(frozen=True)
class DatabaseFigures:
    """What the database holds at one moment; see :func:`read_database_figures`."""

    outbox_pending: int = 0
    oldest_pending_seconds: float = 0.0
    deliveries: dict[tuple[str, str], int] = field(default_factory=dict)
    timers_due: int = 0
    oldest_timer_due_seconds: float = 0.0
    notice_jobs: dict[str, int] = field(default_factory=dict)
    events_logged: int = 0


NOTICE_JOB_STATUSES = ("queued", "running", "done", "cancelled", "failed")
UNFINISHED = ("pending", "sending")


@dataclass
class FinishedCounts:
    """Deliveries in a final status, by channel and status, as last read, and when.

    Counting them reads the whole outbox (about 0.2 s a million rows on PostgreSQL here), so
    a process reads them at most every ``HUB_METRICS_FINISHED_SECONDS``; the unfinished ones,
    found through the status index, are read on every scrape.
    """

    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    read_at: float | None = None


async def read_database_figures(
    database: Database, finished: FinishedCounts | None = None, max_age: float = 0.0
) -> DatabaseFigures:
    """Read the database figures in one read-only connection (no transaction is left open).

    Every query but the count of finished deliveries (see :class:`FinishedCounts`) filters
    or groups on an indexed column: ``outbox.status``, ``timer.due_at``,
    ``notice_job.status``, the primary key of ``case_event``.
    """
    finished = finished or FinishedCounts()
    now = utcnow()
    async with database.reader.connect() as connection:
        clock = time.monotonic()
        if finished.read_at is None or clock - finished.read_at >= max_age:
            finished.counts = await _deliveries(connection, final=True)
            finished.read_at = clock
        return await _figures(connection, now, finished.counts)


async def _deliveries(connection: AsyncConnection, *, final: bool) -> dict[tuple[str, str], int]:
    status = col(OutboxItem.status)
    query = (
        select(OutboxItem.channel, OutboxItem.status, func.count())
        .where(status.not_in(UNFINISHED) if final else status.in_(UNFINISHED))
        .group_by(col(OutboxItem.channel), status)
    )
    return {(channel, state): int(n) for channel, state, n in await connection.execute(query)}


async def _figures(
    connection: AsyncConnection, now: dt.datetime, finished: dict[tuple[str, str], int]
) -> DatabaseFigures:
    deliveries = {**finished, **await _deliveries(connection, final=False)}
    pending = sum(n for (_, status), n in deliveries.items() if status == "pending")
    oldest = (
        await connection.execute(
            select(func.min(OutboxItem.created_at)).where(col(OutboxItem.status) == "pending")
        )
    ).scalar_one_or_none()
    due = select(func.count(), func.min(Timer.due_at)).where(
        col(Timer.due_at) <= now, col(Timer.fired_at).is_(None), col(Timer.cancelled_at).is_(None)
    )
    timers_due, oldest_due = (await connection.execute(due)).one()
    jobs = {status: 0 for status in NOTICE_JOB_STATUSES}
    for status, count in await connection.execute(
        select(NoticeJob.status, func.count()).group_by(col(NoticeJob.status))
    ):
        jobs[status] = int(count)
    last_event = (await connection.execute(select(func.max(CaseEvent.id)))).scalar_one_or_none()
    return DatabaseFigures(
        outbox_pending=pending,
        oldest_pending_seconds=_age(now, oldest),
        deliveries=deliveries,
        timers_due=int(timers_due or 0),
        oldest_timer_due_seconds=_age(now, oldest_due),
        notice_jobs=jobs,
        events_logged=int(last_event or 0),
    )


def _age(now: dt.datetime, moment: dt.datetime | str | None) -> float:
    if moment is None:
        return 0.0
    if isinstance(moment, str):  # SQLite hands an aggregate back as text, not through the type
        moment = dt.datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return max(0.0, (now - moment).total_seconds())


class DatabaseCollector(Collector):
    """The figures of one scrape, as metric families."""

    def __init__(self, figures: DatabaseFigures) -> None:
        self.figures = figures

    def collect(self) -> Iterator[GaugeMetricFamily]:
        f = self.figures
        yield GaugeMetricFamily(
            "hub_outbox_depth",
            "Outbox rows waiting for a delivery worker (status pending), all processes.",
            value=f.outbox_pending,
        )
        yield GaugeMetricFamily(
            "hub_outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox row still pending; 0 when none is.",
            value=f.oldest_pending_seconds,
        )
        deliveries = GaugeMetricFamily(
            "hub_deliveries",
            "Outbox rows by channel and status (pending, sending, delivered, "
            "permanent-failure, temporary-failure, technical-failure).",
            labels=["channel", "status"],
        )
        for (channel, status), count in sorted(f.deliveries.items()):
            deliveries.add_metric([channel, status], count)
        yield deliveries
        yield GaugeMetricFamily(
            "hub_timers_due",
            "Durable timers whose time has come and that no worker has fired yet.",
            value=f.timers_due,
        )
        yield GaugeMetricFamily(
            "hub_timers_oldest_due_age_seconds",
            "How long the longest-waiting due timer has been due; 0 when none is.",
            value=f.oldest_timer_due_seconds,
        )
        jobs = GaugeMetricFamily(
            "hub_notice_jobs", "Bulk notice jobs by status.", labels=["status"]
        )
        for status, count in sorted(f.notice_jobs.items()):
            jobs.add_metric([status], count)
        yield jobs
        yield GaugeMetricFamily(
            "hub_case_events_logged",
            "Events in the case log, all processes (the highest event id: ids of rolled-back "
            "inserts are skipped, so it can run a little ahead of the true count).",
            value=f.events_logged,
        )


def exposition(figures: DatabaseFigures) -> bytes:
    """The text exposition of this process's figures followed by the database's."""
    database = CollectorRegistry(auto_describe=False)
    database.register(DatabaseCollector(figures))
    return generate_latest(REGISTRY) + generate_latest(database)


def route_of(scope: Mapping[str, Any]) -> str:
    """The route template a request matched (``/api/cases/{case_id}``), never the raw path:
    ids in paths would make a label per case."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED_ROUTE
