"""How long a citizen's archive (``GET /api/me/export``) takes, how large it is and how much
memory building it costs, for a party with thousands of messages.

Seeds one party with ``--cases`` cases and ``--messages`` messages spread over them (each
with its event on the case's log), a document per case, notices and access log lines, then
builds the archive twice: once timed, once under tracemalloc for the peak of Python memory.
SQLite in a temporary folder, and PostgreSQL when ``--postgres`` (or HUB_TEST_POSTGRES_URL)
names a server (a database of its own, dropped afterwards).

    .venv/bin/python bench/export_archive.py --messages 5000 --cases 20
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from hub.access.service import Viewer
from hub.db import Database, create_all, utcnow
from hub.documents.service import store_document
from hub.export.service import export_party
from hub.models import Agency, Case, CaseEvent, Message, Notice, Party

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(200_000)
BODY = "Goedemiddag, ik heb een vraag over mijn aanvraag. " * 6


async def seed(database: Database, store: Path, *, cases: int, messages: int) -> Viewer:
    async with database.session() as session:
        session.add(Agency(id="toeslagen", name="Toeslagen", opening_hours={}))
        party = Party(bsn="123456782", name="Jan Jansen")
        session.add(party)
        await session.flush()
        party_id = party.id
        start = utcnow() - dt.timedelta(days=365)
        for number in range(cases):
            case = Case(
                reference=f"HT-2026-{number:06d}",
                journey_id="vraag",
                journey_version=1,
                agency_id="toeslagen",
                party_id=party_id,
                title="Een vraag",
                stage="received",
            )
            session.add(case)
            await session.flush()
            per_case = messages // cases
            for seq in range(1, per_case + 1):
                message = Message(
                    id=uuid.uuid4(),
                    case_id=case.id,
                    party_id=party_id,
                    channel="email",
                    direction="inbound" if seq % 2 else "outbound",
                    author_kind="citizen" if seq % 2 else "staff",
                    author_name="Jan Jansen" if seq % 2 else "Sanne de Wit",
                    body=f"{BODY} ({seq})",
                    created_at=start + dt.timedelta(minutes=seq),
                )
                session.add(message)
                session.add(
                    CaseEvent(
                        case_id=case.id,
                        seq=seq,
                        kind="message",
                        actor_kind=message.author_kind,
                        actor_name=message.author_name,
                        payload={"message_id": str(message.id), "body": message.body},
                        created_at=message.created_at,
                    )
                )
            case.last_seq = per_case
            await store_document(
                session,
                store=store,
                content=PNG + str(number).encode(),
                filename="scan.png",
                source="upload",
                uploaded_by_kind="citizen",
                max_bytes=10_000_000,
                case_id=case.id,
                party_id=party_id,
            )
            await session.flush()
            session.expunge_all()
        for number in range(200):
            session.add(
                Notice(
                    agency_id="toeslagen",
                    party_id=party_id,
                    topic_id=1,
                    template_code="rent",
                    dedupe_key=f"n{number}",
                    status="delivered",
                    subject="Huurtoeslag",
                    body=BODY,
                )
            )
    viewer = Viewer(kind="citizen", id=str(party_id), name="Jan Jansen", party_id=party_id)
    return viewer


async def measure(database: Database, store: Path, args: argparse.Namespace, label: str) -> None:
    await create_all(database)
    began = time.perf_counter()
    viewer = await seed(database, store, cases=args.cases, messages=args.messages)
    seeded = time.perf_counter() - began
    began = time.perf_counter()
    async with database.session() as session:
        archive = await export_party(session, viewer, store=store, timezone="Europe/Amsterdam")
    took = time.perf_counter() - began
    size = archive.size
    on_disk = getattr(archive.file, "_rolled", None)
    archive.file.close()
    tracemalloc.start()
    async with database.session() as session:
        archive = await export_party(session, viewer, store=store, timezone="Europe/Amsterdam")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    archive.file.close()
    print(
        f"{label}: {args.messages:,} messages on {args.cases} cases (seeded in {seeded:.1f} s): "
        f"archive {size / 1e6:.1f} MB in {took:.2f} s, spilled to disk: {on_disk}, "
        f"peak Python memory while building {peak / 1e6:.1f} MB; "
        f"load average {os.getloadavg()[0]:.2f}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--postgres", default=os.environ.get("HUB_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        database = Database(f"sqlite+aiosqlite:///{folder}/hub.db")
        await measure(database, Path(folder) / "documents", args, "SQLite")
        await database.dispose()
    if args.postgres:
        name = f"hub_bench_export_{os.getpid()}"
        admin = create_async_engine(args.postgres, isolation_level="AUTOCOMMIT")
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            database = Database(args.postgres.rsplit("/", 1)[0] + f"/{name}")
            with tempfile.TemporaryDirectory() as folder:
                await measure(database, Path(folder) / "documents", args, "PostgreSQL")
            await database.dispose()
        finally:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
