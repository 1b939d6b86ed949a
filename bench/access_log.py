"""What chaining the access log costs a request, on PostgreSQL (and SQLite for reference).

A request that reads a citizen's data writes one access log entry in its transaction and
commits. Here each unit of work is that: open a session, write one entry, commit. Measured:

- ``plain``: the entry inserted as before the chain (its place counted in Python, no lock);
- ``chained``: through ``hub.access.chain.append_entry`` — the advisory lock, the head read
  through the ``seq`` index, the hash, the insert;

each with 1 writer and with ``--writers`` writers at once (each on its own connection, as
requests or hub processes would be). Prints units per second and p50/p99 in milliseconds,
and the chained rate as a share of the plain one. Then verifies the chain it wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from itertools import count

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from hub.access.chain import append_entry, pseudonym, verify_chain
from hub.db import Database, create_all
from hub.models import AccessLogEntry, Party
from hub.models.access import SQLITE_APPEND_ONLY

ADMIN_URL = os.environ.get(
    "HUB_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)

Unit = Callable[[Database, uuid.UUID], Awaitable[None]]
_plain_seq = count(10_000_000)


def _entry(party_id: uuid.UUID) -> AccessLogEntry:
    return AccessLogEntry(
        party_id=party_id,
        subject=pseudonym(party_id),
        actor_kind="staff",
        actor_id="bench",
        actor_name="Bench",
        action="read",
        data="case",
    )


async def plain(database: Database, party_id: uuid.UUID) -> None:
    async with database.session() as session:
        entry = _entry(party_id)
        entry.seq, entry.prev_hash, entry.entry_hash = next(_plain_seq), "-", "-"
        session.add(entry)
        await session.flush()


async def chained(database: Database, party_id: uuid.UUID) -> None:
    async with database.session() as session:
        await append_entry(session, _entry(party_id))


async def run(
    database: Database, unit: Unit, party_id: uuid.UUID, *, writers: int, per_writer: int
) -> tuple[float, float, float]:
    latencies: list[float] = []

    async def writer() -> None:
        for _ in range(per_writer):
            started = time.perf_counter()
            await unit(database, party_id)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return len(latencies) / elapsed, cuts[49] * 1000, cuts[98] * 1000


async def _drop_plain_rows(database: Database) -> None:
    """The plain rows are outside the chain: gone before the chained ones come."""
    async with database.engine.begin() as connection:
        if database.dialect == "postgresql":
            await connection.execute(text("SET LOCAL session_replication_role = replica"))
            await connection.execute(text("DELETE FROM access_log WHERE prev_hash = '-'"))
            return
        await connection.execute(text("DROP TRIGGER access_log_no_delete"))
        await connection.execute(text("DELETE FROM access_log WHERE prev_hash = '-'"))
        await connection.execute(text(SQLITE_APPEND_ONLY[0]))


async def bench(url: str, *, writers: int, per_writer: int) -> None:
    database = Database(url)
    await create_all(database)
    async with database.session() as session:
        party = Party(name="Bench Citizen")
        session.add(party)
    print(f"{database.dialect}: {per_writer} units a writer")
    for label, n in (("1 writer", 1), (f"{writers} writers", writers)):
        rates = {}
        for name, unit in (("plain", plain), ("chained", chained)):
            await run(database, unit, party.id, writers=n, per_writer=20)  # warm up
            rate, p50, p99 = await run(database, unit, party.id, writers=n, per_writer=per_writer)
            rates[name] = rate
            if unit is plain:
                await _drop_plain_rows(database)
            print(f"  {label:>10} {name:>8}: {rate:7.0f}/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")
        print(f"  {label:>10} chained/plain: {rates['chained'] / rates['plain']:.2f}")
    started = time.perf_counter()
    report = await verify_chain(database)
    print(
        f"  verify: {report.checked} entries, ok={report.ok}, "
        f"{report.checked / (time.perf_counter() - started):.0f} entries/s"
    )
    await database.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--per-writer", type=int, default=200)
    parser.add_argument("--sqlite", action="store_true", help="also on a SQLite file")
    args = parser.parse_args()
    name = f"hub_bench_access_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        await bench(url, writers=args.writers, per_writer=args.per_writer)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
    if args.sqlite:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{folder}/bench.db"
            await bench(url, writers=args.writers, per_writer=100)


if __name__ == "__main__":
    asyncio.run(main())
