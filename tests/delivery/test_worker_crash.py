"""A delivery worker killed with SIGKILL ten times during 2,000 sends loses nothing: every
message ends in a final status, and a message reaches the receiving end twice only where a
kill fell between handing it over and recording that — at most as many per kill as the
worker may have handed over and not yet recorded."""

from __future__ import annotations

import asyncio
import collections
import itertools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func
from sqlmodel import col, select

from hub.db import Database
from hub.delivery.service import enqueue
from hub.delivery.worker import UNRECORDED_PER_SEND
from hub.models import OutboxItem
from tests.delivery.receiving_worker import CONCURRENCY

MESSAGES = 2000
KILLS = 10
WORKER = Path(__file__).with_name("receiving_worker.py")
ROOT = Path(__file__).parents[2]


def start_worker(url: str, received: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, str(WORKER), url, str(received)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()
    if process.stdout is not None:
        process.stdout.close()


async def statuses(database: Database) -> dict[str, int]:
    async with database.session() as session:
        rows = await session.exec(
            select(OutboxItem.status, func.count()).group_by(col(OutboxItem.status))
        )
        return dict(rows.all())


def received_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def test_sigkill_during_sends_loses_nothing_and_duplicates_only_at_kills(
    database: Database, tmp_path: Path
) -> None:
    async with database.session() as session:
        for number in range(MESSAGES):
            await enqueue(
                session,
                channel="email",
                recipient=f"citizen{number}@example.nl",
                template="notice",
                body=f"Message {number}",
            )
    received = tmp_path / "received.log"
    rng = random.Random(20261128)
    kills_done = 0
    deadline = time.monotonic() + 240
    worker = start_worker(database.url, received)
    try:
        # Kill at random moments while sending is under way, restarting each time.
        while kills_done < KILLS:
            await asyncio.sleep(rng.uniform(0.02, 0.15))
            if len(received_lines(received)) >= MESSAGES - 50:
                break
            kill(worker)
            kills_done += 1
            with received.open("a") as log:
                log.write(f"KILL {kills_done}\n")
            worker = start_worker(database.url, received)
        while (await statuses(database)).keys() - {"delivered"} and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        kill(worker)

    assert kills_done >= 5, "the worker finished before it could be killed often enough"
    assert await statuses(database) == {"delivered": MESSAGES}

    lines = received_lines(received)
    sends = [line for line in lines if not line.startswith("KILL")]
    counts = collections.Counter(sends)
    extra_sends = len(sends) - len(counts)
    assert len(counts) == MESSAGES
    assert extra_sends <= kills_done * UNRECORDED_PER_SEND * CONCURRENCY
    # A message handed over again was handed over, then a kill came before that could be
    # recorded: between any two sends of one message lies a KILL line.
    positions: dict[str, list[int]] = collections.defaultdict(list)
    for index, line in enumerate(lines):
        positions[line].append(index)
    for message_id in counts:
        for first, second in itertools.pairwise(positions[message_id]):
            assert any(line.startswith("KILL") for line in lines[first:second]), message_id
