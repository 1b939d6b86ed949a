"""A bulk job of 1,000,000 notices on PostgreSQL, next to COPY of as many outbox rows.

The job is what an agency posts to ``POST /api/notice-jobs`` (or ``hub notices push``): an
NDJSON file of one notice per citizen. The script times the two steps the hub takes:

- accept: the file streamed into the document store and its job queued;
- route: every row read, checked and routed — party looked up, consent checked, channel
  chosen from the preferred channel and the verified addresses, template filled in, daily cap
  and duplicates checked — and the notices and their outbox rows written, batch by batch,
  as the worker does;

and, in the same run on the same server, a plain ``COPY`` of the same number of outbox rows
(the rows the job wrote, repeated up to as many as the file had notices, into an emptied
outbox). It prints notices per second, the
process's peak memory while the job ran (flat: it does not grow with the file), and the
ratio of the job's rate to COPY's. The aim is at least 0.25. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.db import Database, create_all, utcnow  # noqa: E402
from hub.models import Consent, DigitalAddress, Party  # noqa: E402
from hub.notices.bulk import OUTBOX_TABLE  # noqa: E402
from hub.notices.jobs import claim_job, create_job, run_job, store_stream  # noqa: E402
from hub.parties.service import bsn_is_valid  # noqa: E402
from journeys.catalog import load_catalog  # noqa: E402
from tests.notices.conftest import PERSONALISATION, build_world  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
TIMEZONE = "Europe/Amsterdam"


def bsns(count: int) -> list[str]:
    """``count`` valid BSNs (passing the eleven-test), in order."""
    found: list[str] = []
    number = 100_000_000
    while len(found) < count:
        candidate = str(number)
        if bsn_is_valid(candidate):
            found.append(candidate)
        number += 1
    return found


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


class PeakMemory:
    """Samples this process's resident memory every 20 ms while it runs."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb())
            time.sleep(0.02)

    def __enter__(self) -> PeakMemory:
        self.peak = rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


async def raw_connection(url: str) -> asyncpg.Connection:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return await asyncpg.connect(dsn)


async def citizens(url: str, numbers: list[str], topic_id: int) -> None:
    """One party per BSN: 70 % prefer email, 15 % SMS, 15 % the portal; every one has a
    verified mail address and phone number; 95 % said yes to the topic, 5 % never answered."""
    now = utcnow()
    connection = await raw_connection(url)
    try:
        parties, addresses, consents = [], [], []
        for index, bsn in enumerate(numbers):
            party_id = uuid.uuid4()
            share = index % 20
            channel = "email" if share < 14 else "sms" if share < 17 else "portal"
            parties.append(
                (
                    party_id,
                    "person",
                    bsn,
                    None,
                    f"Burger {index}",
                    None,
                    channel,
                    "nl",
                    "[]",
                    None,
                    now,
                )
            )
            addresses.append(
                (uuid.uuid4(), party_id, "email", f"burger{index}@example.nl", now, None, now)
            )
            addresses.append(
                (uuid.uuid4(), party_id, "phone", f"+3161{index:07d}"[:12], now, None, now)
            )
            if share != 19:
                consents.append((party_id, topic_id, True, "citizen", None, "portal", now))
        columns = [c.name for c in Party.__table__.columns]  # type: ignore[attr-defined]
        await connection.copy_records_to_table("party", records=parties, columns=columns)
        columns = [c.name for c in DigitalAddress.__table__.columns if c.name != "id"]  # type: ignore[attr-defined]
        await connection.copy_records_to_table(
            "digital_address",
            records=addresses,
            columns=["id", *columns],
        )
        columns = [c.name for c in Consent.__table__.columns if c.name != "id"]  # type: ignore[attr-defined]
        await connection.copy_records_to_table("consent", records=consents, columns=columns)
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def write_file(path: Path, numbers: list[str]) -> int:
    with path.open("w") as out:
        for bsn in numbers:
            row = {
                "bsn": bsn,
                "topic": "allowances",
                "template": "rent",
                "personalisation": PERSONALISATION,
            }
            out.write(json.dumps(row, separators=(",", ":")) + "\n")
    return path.stat().st_size


async def copy_outbox(url: str, count: int) -> tuple[int, float]:
    """COPY ``count`` outbox rows — the rows the job wrote, repeated with new ids up to as many
    as the file had notices — into the emptied outbox, and time it."""
    connection = await raw_connection(url)
    try:
        await connection.set_type_codec(
            "json", encoder=str.encode, decoder=bytes.decode, schema="pg_catalog", format="binary"
        )
        names = [c.name for c in OUTBOX_TABLE.columns]
        listed = ", ".join(names)  # the table's own column names
        written = await connection.fetch(f"SELECT {listed} FROM outbox")  # noqa: S608
        await connection.execute("TRUNCATE outbox CASCADE")
        await connection.execute("CHECKPOINT")
        rows = [(uuid.uuid4(), *tuple(written[n % len(written)])[1:]) for n in range(count)]
        started = time.perf_counter()
        async with connection.transaction():
            await connection.copy_records_to_table("outbox", records=rows, columns=names)
        return len(rows), time.perf_counter() - started
    finally:
        await connection.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="notices in the file")
    parser.add_argument("--batch-rows", type=int, default=5000, help="rows a batch")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("HUB_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL),
        help="admin URL of the PostgreSQL server; the benchmark makes a database of its own",
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark's database")
    args = parser.parse_args()

    name = f"hub_bench_notices_{os.getpid()}"
    admin = create_async_engine(args.postgres, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
    database = Database(url)
    try:
        await create_all(database)
        async with database.session() as session:
            world = await build_world(session)
        print(f"Setting up {args.rows:,} citizens …", flush=True)
        numbers = bsns(args.rows)
        await citizens(url, numbers, world.topic.id or 0)
        with tempfile.TemporaryDirectory() as folder:
            store = Path(folder) / "documents"
            source = Path(folder) / "notices.ndjson"
            size = write_file(source, numbers)
            del numbers

            async def chunks() -> Any:
                with source.open("rb") as file:
                    while chunk := file.read(1 << 20):
                        yield chunk

            before = rss_mb()
            with PeakMemory() as memory:
                started = time.perf_counter()
                stored = await store_stream(store, chunks(), max_bytes=1 << 40)
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
                accepted = time.perf_counter()
                claimed = await claim_job(database, job_id=job.id)
                assert claimed is not None
                done = await run_job(
                    database,
                    claimed,
                    store=store,
                    catalog=load_catalog(None),
                    timezone=TIMEZONE,
                    base_url="https://hub.example.nl",
                    batch_rows=args.batch_rows,
                )
                finished = time.perf_counter()
        async with database.session() as session:
            outbox = (
                await session.exec(text("SELECT count(*) FROM outbox"))  # type: ignore[call-overload]
            ).one()[0]
        copied, copy_seconds = await copy_outbox(url, done.next_row)
        total = finished - started
        rate = done.next_row / total
        copy_rate = copied / copy_seconds
        print()
        print(
            f"File: {done.next_row:,} rows, {size / 1e6:,.1f} MB (batches of {args.batch_rows:,})"
        )
        print(
            f"Job: {done.status}; accepted {done.accepted:,}, not sent {done.not_sent:,}, "
            f"duplicates {done.duplicates:,}, rejected {done.rejected:,}; outbox rows {outbox:,}"
        )
        print(f"Accept (store the file, queue the job): {accepted - started:6.2f} s")
        print(f"Route (check, route, write):            {finished - accepted:6.2f} s")
        print(f"Accept and route: {total:6.2f} s = {rate:,.0f} notices/s")
        print(
            f"Memory: {before:,.0f} MB before the job, peak {memory.peak:,.0f} MB while it ran "
            f"(max RSS of the process {max_rss_mb():,.0f} MB)"
        )
        print(
            f"PostgreSQL COPY of {copied:,} outbox rows: {copy_seconds:6.2f} s "
            f"= {copy_rate:,.0f} rows/s"
        )
        print(f"Ratio (job notices/s ÷ COPY rows/s): {rate / copy_rate:.2f}  (aim: at least 0.25)")
    finally:
        await database.dispose()
        if not args.keep:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
