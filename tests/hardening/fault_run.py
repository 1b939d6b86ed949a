"""Delivery under faults, shared by tests/hardening/test_delivery_faults.py (small, in CI) and
bench/delivery_faults.py (10,000 notices, 20 kills).

A run starts a PostgreSQL cluster of its own in a temporary directory (so a restart disturbs
no other test), migrates it, has an agency's bulk job route N notices to citizens who said yes
to email, and runs ``hub worker`` against it and a real SMTP server (tests/hardening/
mail_sink.py, which notes every Message-ID it accepts). The worker is killed with SIGKILL at
seeded random moments and started again, and the database is restarted once (``pg_ctl restart
-m immediate``: a crash, then recovery), until every outbox row has a final status. What the
receiving end got and what the hub recorded are then compared (:class:`Result`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert
from sqlmodel import col, select

from hub.db import Database, utcnow
from hub.migrations import upgrade_async
from hub.models import Consent, DigitalAddress, Notice, OutboxItem, Party
from hub.notices.jobs import claim_job, create_job, run_job, store_stream
from hub.parties.service import bsn_is_valid
from journeys.catalog import load_catalog
from tests.notices.conftest import PERSONALISATION, TIMEZONE, build_world

ROOT = Path(__file__).resolve().parents[2]
SINK = Path(__file__).with_name("mail_sink.py")
FINAL = {"delivered", "permanent-failure", "technical-failure"}
BASE_URL = "https://hub.example.nl"


def postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server programs (initdb, pg_ctl), if installed."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parts)
    return versions[-1].parent if versions else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Cluster:
    """A PostgreSQL cluster in a temporary directory, on a free port, with its unix socket in
    that directory too. As root, its programs run as the ``postgres`` user."""

    def __init__(self, programs: Path) -> None:
        self.programs = programs
        self.folder = Path(tempfile.mkdtemp(prefix="hub-faults-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.as_owner: list[str] = []
        if os.geteuid() == 0:
            self.as_owner = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.folder, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, program: str, *args: str) -> None:
        command = [*self.as_owner, str(self.programs / program), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed: {done.stderr.strip() or done.stdout.strip()}")

    def start(self) -> None:
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")
        self.pg_ctl("start")

    def pg_ctl(self, action: str, *args: str) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=100"
        )
        log = str(self.folder / "postgres.log")
        self.run("pg_ctl", action, "-D", str(self.data), "-w", "-l", log, "-o", options, *args)

    def restart(self) -> None:
        """Stop the server as a crash would (no checkpoint, connections cut) and start it
        again: it recovers from its write-ahead log."""
        self.pg_ctl("restart", "-m", "immediate")

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            self.run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.asynccontextmanager
async def cluster() -> AsyncIterator[Cluster]:
    programs = postgres_bin()
    if programs is None:
        raise RuntimeError("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
    server = Cluster(programs)
    try:
        await asyncio.to_thread(server.start)
        yield server
    finally:
        await asyncio.to_thread(server.remove)


def bsns(count: int) -> list[str]:
    """``count`` valid BSNs (passing the eleven-test)."""
    found: list[str] = []
    number = 100_000_000
    while len(found) < count:
        if bsn_is_valid(str(number)):
            found.append(str(number))
        number += 1
    return found


async def post_notices(database: Database, count: int, store: Path) -> None:
    """``count`` citizens who prefer email and said yes to Toeslagen's topic, and one bulk
    job of a notice to each, posted and routed as an agency's would be."""
    numbers = bsns(count)
    now = utcnow()
    async with database.session() as session:
        world = await build_world(session)
        topic_id = world.topic.id
        connection = await session.connection()
        for start in range(0, count, 1000):
            chunk = numbers[start : start + 1000]
            ids = [uuid.uuid4() for _ in chunk]
            parties = [
                {
                    "id": party_id,
                    "kind": "person",
                    "bsn": bsn,
                    "name": f"Burger {bsn}",
                    "preferred_channel": "email",
                    "preferred_language": "nl",
                    "needs": [],
                    "created_at": now,
                }
                for party_id, bsn in zip(ids, chunk, strict=True)
            ]
            await connection.execute(insert(Party), parties)
            addresses = [
                {
                    "id": uuid.uuid4(),
                    "party_id": party_id,
                    "kind": "email",
                    "value": f"burger{bsn}@example.nl",
                    "verified_at": now,
                    "created_at": now,
                }
                for party_id, bsn in zip(ids, chunk, strict=True)
            ]
            await connection.execute(insert(DigitalAddress), addresses)
            consents = [
                {
                    "party_id": party_id,
                    "topic_id": topic_id,
                    "granted": True,
                    "recorded_by_kind": "citizen",
                    "source": "portal",
                    "recorded_at": now,
                }
                for party_id in ids
            ]
            await connection.execute(insert(Consent), consents)
    lines = [
        json.dumps(
            {
                "bsn": bsn,
                "topic": "allowances",
                "template": "rent",
                "personalisation": PERSONALISATION,
            }
        ).encode()
        + b"\n"
        for bsn in numbers
    ]

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(lines), 1000):
            yield b"".join(lines[start : start + 1000])

    stored = await store_stream(store, chunks(), max_bytes=1 << 30)
    async with database.session() as session:
        job = await create_job(
            session,
            agency_id="toeslagen",
            format="ndjson",
            stored=stored,
            store=store,
            filename="notices.ndjson",
            uploaded_by_kind="agency",
            uploaded_by_id=None,
        )
    claimed = await claim_job(database, job_id=job.id)
    assert claimed is not None
    done = await run_job(
        database,
        claimed,
        store=store,
        catalog=load_catalog(None),
        timezone=TIMEZONE,
        base_url=BASE_URL,
    )
    assert done.status == "done", done.status


@dataclass(frozen=True)
class Plan:
    notices: int
    kills: int
    restarts: int = 1
    # Messages handed over and not yet recorded, at most (None: the worker's default).
    unrecorded_at_most: int | None = 1
    concurrency: int = 16
    claim_seconds: float = 3.0
    seed: int = 0
    timeout: float = 600.0


@dataclass
class Result:
    plan: Plan
    kills: int = 0
    restarts: int = 0
    seconds: float = 0.0
    # Message-ID -> how often the receiving end accepted it.
    received: collections.Counter[str] = field(default_factory=collections.Counter)
    # Message-ID (the outbox row's provider id) -> the row's attempts, of delivered rows.
    attempts: dict[str, int] = field(default_factory=dict)
    outbox: dict[str, int] = field(default_factory=dict)  # status -> rows
    notices: dict[str, int] = field(default_factory=dict)  # status -> notices
    # What the receiving end noted, in order, with a line "KILL n" or "RESTART n" at each
    # fault (n: the rows delivered when it was due).
    log: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        """Mails received more often than once, counted once per extra time."""
        return sum(times - 1 for times in self.received.values())

    @property
    def unaccounted(self) -> list[str]:
        """Message-IDs received more often than their rows have attempts: sent twice without
        the hub noting that it may have been (the claim that ran out counts an attempt)."""
        return [mid for mid, times in self.received.items() if times > self.attempts.get(mid, 0)]

    def summary(self) -> str:
        bound = self.plan.unrecorded_at_most or f"default (4 x {self.plan.concurrency})"
        marked = sum(1 for attempts in self.attempts.values() if attempts > 1)
        return (
            f"{self.plan.notices} notices, seed {self.plan.seed}, unrecorded at most {bound}: "
            f"{self.kills} kills, {self.restarts} database restarts, {self.seconds:.1f} s; "
            f"outbox {self.outbox}, notices {self.notices}; received {sum(self.received.values())}"
            f" mails, {len(self.received)} distinct, {self.duplicates} duplicates "
            f"({self.duplicates / max(self.kills, 1):.2f} per kill); {marked} rows marked as "
            f"perhaps sent twice, {len(self.unaccounted)} duplicates unmarked"
        )


def worker_environment(url: str, smtp_port: int, plan: Plan, data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env |= {
        "HUB_ENVIRONMENT": "production",
        "HUB_DATABASE_URL": url,
        "HUB_SECRET_KEY": secrets.token_urlsafe(48),
        "HUB_BASE_URL": BASE_URL,
        "HUB_DATA_DIR": str(data),
        "HUB_SMTP_HOST": "127.0.0.1",
        "HUB_SMTP_PORT": str(smtp_port),
        "HUB_SMTP_SECURITY": "none",
        "HUB_WORKER_INTERVAL_SECONDS": "0.05",
        "HUB_DELIVERY_CONCURRENCY": str(plan.concurrency),
        "HUB_DELIVERY_CLAIM_SECONDS": str(plan.claim_seconds),
        "HUB_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    if plan.unrecorded_at_most is not None:
        env["HUB_DELIVERY_UNRECORDED_AT_MOST"] = str(plan.unrecorded_at_most)
    return env


class Workers:
    """``hub worker`` processes, one at a time, their output appended to one log."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0

    def start(self) -> None:
        hub = Path(sys.executable).with_name("hub")
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(hub), "worker"], cwd=ROOT, env=self.env, stdout=out, stderr=out
            )
        self.started += 1

    def running(self) -> bool:
        """Whether the worker has said it runs (its rounds have begun)."""
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"the worker is not running; see {self.log}")
        return self.log.read_bytes().count(b"Worker running") >= self.started

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None


def start_sink(received: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The receiving end (tests/hardening/mail_sink.py) and the port it listens on."""
    process = subprocess.Popen(
        [sys.executable, str(SINK), str(received)], stdout=subprocess.PIPE, cwd=ROOT
    )
    assert process.stdout is not None
    return process, int(process.stdout.readline())


async def delivered(database: Database) -> int | None:
    """Outbox rows delivered so far; None while the database cannot be reached."""
    try:
        async with database.session() as session:
            query = select(func.count()).where(col(OutboxItem.status) == "delivered")
            return (await session.exec(query)).one()
    except Exception:
        return None


async def counts(database: Database, column: Any) -> dict[str, int]:
    async with database.session() as session:
        rows = await session.exec(select(column, func.count()).group_by(column))
        return dict(rows.all())


async def run(plan: Plan, folder: Path, say: Any = print) -> Result:
    """Carry out ``plan`` (see the module's docstring); ``folder`` holds the logs, the
    receiving end's file and the document store. The cluster and every process started are
    gone when it returns, whatever happened."""
    rng = random.Random(plan.seed)
    result = Result(plan)
    received = folder / "received.log"
    async with cluster() as server:
        await upgrade_async(server.url)
        database = Database(server.url)
        sink_process: subprocess.Popen[bytes] | None = None
        workers: Workers | None = None
        try:
            say(f"posting {plan.notices} notices …")
            await post_notices(database, plan.notices, folder / "documents")
            sink_process, port = await asyncio.to_thread(start_sink, received)
            env = worker_environment(server.url, port, plan, folder / "data")
            workers = Workers(env, folder / "worker.log")
            # The faults fall at random counts of delivered rows, so that they are spread over
            # the run however fast the machine is; and then after a random moment more.
            low, high = int(plan.notices * 0.05), int(plan.notices * 0.9)
            faults = sorted(
                [(rng.randint(low, high), "kill") for _ in range(plan.kills)]
                + [(rng.randint(low, high), "restart") for _ in range(plan.restarts)]
            )
            started = time.monotonic()
            deadline = started + plan.timeout
            workers.start()
            for threshold, fault in faults:
                while not workers.running():
                    await asyncio.sleep(0.02)
                while ((await delivered(database)) or 0) < threshold:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"not {threshold} delivered within {plan.timeout} s")
                    await asyncio.sleep(0.05)
                await asyncio.sleep(rng.uniform(0, 0.1))
                if fault == "kill":
                    workers.kill()
                    result.kills += 1
                    workers.start()
                else:
                    await asyncio.to_thread(server.restart)
                    result.restarts += 1
                with received.open("a") as marks:
                    marks.write(f"{fault.upper()} {threshold}\n")
                say(f"{fault} at {threshold} delivered ({time.monotonic() - started:.1f} s)")
            while True:
                workers.running()  # raises if the worker died by itself
                with contextlib.suppress(Exception):
                    outbox = await counts(database, col(OutboxItem.status))
                    if outbox.keys() <= FINAL:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"outbox not final within {plan.timeout} s")
                await asyncio.sleep(0.2)
            result.seconds = time.monotonic() - started
            workers.kill()
            result.outbox = await counts(database, col(OutboxItem.status))
            result.notices = await counts(database, col(Notice.status))
            async with database.session() as session:
                rows = await session.exec(
                    select(OutboxItem.provider_id, OutboxItem.attempts).where(
                        col(OutboxItem.status) == "delivered"
                    )
                )
                result.attempts = {str(mid): attempts for mid, attempts in rows.all()}
            lines = received.read_text().splitlines()
            result.log = lines
            result.received = collections.Counter(line for line in lines if line.startswith("<"))
            return result
        finally:
            if workers is not None:
                workers.kill()
            if sink_process is not None:
                sink_process.kill()
                sink_process.wait()
                if sink_process.stdout is not None:
                    sink_process.stdout.close()
            await database.dispose()
