"""A worker asked to stop finishes the mail under way and releases the rest at once: the
sends in flight complete (within the grace period), and what it claimed but did not send is
free for another worker straight away instead of when the claim expires. `hub worker` does
this on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlmodel import select

from channels.email.adapter import SmtpAdapter
from hub.config import Settings
from hub.db import Database, utcnow
from hub.delivery.service import enqueue
from hub.delivery.worker import Worker, claim_due
from hub.models import OutboxItem
from hub.ports import AdapterRegistry
from journeys.catalog import load_catalog
from tests.email.sink import SmtpSink, smtp_settings

ROOT = Path(__file__).parents[2]
HUB = str(Path(sys.executable).with_name("hub"))


async def fill(database: Database, count: int) -> None:
    async with database.session() as session:
        for number in range(count):
            await enqueue(
                session,
                channel="email",
                recipient=f"burger{number}@example.nl",
                template="notice",
                subject="Uw toeslag",
                body=f"Bericht {number}",
            )


async def rows(database: Database) -> list[OutboxItem]:
    async with database.session() as session:
        return list((await session.exec(select(OutboxItem))).all())


async def until(condition: Callable[[], bool], seconds: float = 20) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.fixture
async def slow_sink() -> AsyncIterator[SmtpSink]:
    sink = SmtpSink(gate=asyncio.Event())
    await sink.start()
    yield sink
    assert sink.gate is not None
    sink.gate.set()
    await sink.stop()


def worker(database: Database, sink: SmtpSink, settings: Settings, grace: float) -> Worker:
    adapters = AdapterRegistry()
    adapters.register(SmtpAdapter(smtp_settings(settings, sink.port)))
    return Worker(
        database=database,
        adapters=adapters,
        catalog=load_catalog(None),
        broker=None,
        timezone="Europe/Amsterdam",
        concurrency=3,
        grace_seconds=grace,
    )


async def test_a_stopped_worker_finishes_what_is_under_way_and_releases_the_rest(
    database: Database, slow_sink: SmtpSink, settings: Settings
) -> None:
    await fill(database, 10)
    stop = asyncio.Event()
    running = asyncio.create_task(worker(database, slow_sink, settings, grace=10).run(stop))
    await until(lambda: slow_sink.receiving == 3)  # three mails are with the server

    stop.set()
    await asyncio.sleep(0.2)
    assert slow_sink.gate is not None
    slow_sink.gate.set()  # the server answers them
    await asyncio.wait_for(running, 10)

    # The three arrived once each and are recorded as delivered; nothing else was sent.
    assert len(slow_sink.received) == 3
    delivered = {item.recipient for item in await rows(database) if item.status == "delivered"}
    assert delivered == {r.recipients[0] for r in slow_sink.received}
    # The seven it did not send are free again, untouched, and another worker takes them now.
    rest = [item for item in await rows(database) if item.status != "delivered"]
    assert len(rest) == 7
    assert all(i.status == "pending" and i.claimed_until is None for i in rest)
    assert all(i.attempts == 0 for i in rest)
    taken = await claim_due(database, limit=20)
    assert {m.id for m in taken} == {i.id for i in rest}


async def test_a_send_that_outlasts_the_grace_period_is_cut_off_and_tried_again_later(
    database: Database, slow_sink: SmtpSink, settings: Settings
) -> None:
    await fill(database, 5)
    stop = asyncio.Event()
    running = asyncio.create_task(worker(database, slow_sink, settings, grace=0.3).run(stop))
    await until(lambda: slow_sink.receiving == 3)

    stop.set()  # the server never answers
    await asyncio.wait_for(running, 10)

    items = await rows(database)
    cut_off = [i for i in items if i.attempts == 1]
    assert len(cut_off) == 3
    # Whether the server kept them is unknown: they are retried after the backoff, by
    # whichever worker is running then, like any temporary failure.
    for item in cut_off:
        assert item.status == "sending" and item.claimed_until is None
        assert item.last_error is not None and "stopping" in item.last_error
        assert item.next_attempt_at > utcnow()
    released = [i for i in items if i.attempts == 0]
    assert len(released) == 2
    assert all(i.status == "pending" and i.claimed_until is None for i in released)


@pytest.mark.parametrize("database", ["postgres"], indirect=True)  # `hub worker` on its own
async def test_hub_worker_stops_gracefully_on_sigterm(
    database: Database, slow_sink: SmtpSink, tmp_path: Path
) -> None:
    await fill(database, 40)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HUB_ENVIRONMENT": "test",
        "HUB_DATABASE_URL": database.url,
        "HUB_DATA_DIR": str(tmp_path),
        "HUB_SMTP_HOST": "127.0.0.1",
        "HUB_SMTP_PORT": str(slow_sink.port),
        "HUB_SMTP_SECURITY": "none",
        "HUB_MAIL_FROM": "Gemeente <noreply@hub.test>",
    }
    env.pop("HUB_REDIS_URL", None)
    process = await asyncio.create_subprocess_exec(
        HUB, "worker", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        await until(lambda: slow_sink.receiving >= 1)
        await asyncio.sleep(0.3)  # the worker starts as many sends as it may
        under_way = slow_sink.receiving
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.2)
        assert slow_sink.gate is not None
        slow_sink.gate.set()
        output, _ = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert process.returncode == 0, output.decode()
    items = await rows(database)
    delivered = [i for i in items if i.status == "delivered"]
    assert len(slow_sink.received) == len(delivered) == under_way
    rest = [i for i in items if i.status != "delivered"]
    assert rest and all(i.status == "pending" and i.claimed_until is None for i in rest)
    taken = await claim_due(database, limit=100)
    assert {m.id for m in taken} == {i.id for i in rest}
