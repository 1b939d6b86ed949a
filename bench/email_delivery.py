"""Email delivery from the outbox, next to aiosmtplib sending the same mail straight out.

The hub: N outbox rows are written (PostgreSQL by default), then the delivery worker's own
rounds (``Worker.run_once``: claim, render and send through the SMTP adapter, record) run
until the outbox is empty. The baseline: the same messages, rendered beforehand, sent by
aiosmtplib over as many connections as the worker may send at once. Both send to one
aiosmtpd server running in a process of its own, which notes the Message-ID of every mail
it accepts, so the script checks that every message arrived exactly once. The two take
turns for a few rounds; the figures are the medians.

The aim is a hub rate of at least 0.7 times the baseline's. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosmtplib
from sqlalchemy import delete, func, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import col, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from channels.email.adapter import MailComposer, SmtpAdapter  # noqa: E402
from hub.config import Settings  # noqa: E402
from hub.db import Database, create_all, utcnow  # noqa: E402
from hub.delivery.worker import CONCURRENCY, Worker  # noqa: E402
from hub.models import OutboxItem  # noqa: E402
from hub.ports import AdapterRegistry, Outbound  # noqa: E402
from journeys.catalog import load_catalog  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
SUBJECT = "U hebt misschien recht op huurtoeslag"
BODY = (
    "Uit onze gegevens blijkt dat u misschien recht hebt op huurtoeslag voor 2027.\n"
    "Vraag het aan voor 1 september; daarna kan het niet meer met terugwerkende kracht.\n\n"
    "U vindt de aanvraag en wat u ervoor nodig hebt in uw berichtenbox."
)
MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)


# --- the receiving end: an aiosmtpd server in a process of its own --------------------------


async def sink_server() -> None:
    """Accept every mail and note its Message-ID. Prints its port; then, for each line
    ``take PATH`` on stdin, writes the ids noted so far to PATH, forgets them and answers
    ``taken N``."""
    from aiosmtpd.smtp import SMTP, Envelope, Session

    noted: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
            content = envelope.original_content or b""
            found = MESSAGE_ID.search(content[: content.find(b"\r\n\r\n")])
            noted.append(found.group(1) if found else b"<none>")
            return "250 OK: queued"

    handler = Handler()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname="sink.test"), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        command, _, path = line.partition(" ")
        if command == "take":
            Path(path).write_bytes(b"".join(i + b"\n" for i in noted))  # noqa: ASYNC240
            print(f"taken {len(noted)}", flush=True)
            noted.clear()
    server.close()


class Sink:
    """The sink process, seen from here."""

    def __init__(self, process: asyncio.subprocess.Process, port: int, folder: Path) -> None:
        self.process = process
        self.port = port
        self.folder = folder

    @classmethod
    async def start(cls, folder: Path) -> Sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--sink",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        port = int((await process.stdout.readline()).decode())
        return cls(process, port, folder)

    async def take(self) -> collections.Counter[str]:
        """The Message-IDs of the mail accepted since the last take, with how often each."""
        assert self.process.stdin is not None and self.process.stdout is not None
        path = self.folder / f"taken-{uuid.uuid4().hex}"
        self.process.stdin.write(f"take {path}\n".encode())
        await self.process.stdin.drain()
        answer = (await self.process.stdout.readline()).decode()
        if not answer.startswith("taken"):
            raise RuntimeError("the SMTP sink did not answer")
        return collections.Counter(path.read_text().splitlines())

    async def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


# --- the two ways of sending ----------------------------------------------------------------


def settings_for(port: int, folder: Path) -> Settings:
    return Settings(
        environment="test",
        data_dir=folder,
        run_worker=False,
        mail_from="Dienst Toeslagen <noreply@reply.hub.test>",
        inbound_mail_domain="reply.hub.test",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
    )


async def fill_outbox(database: Database, messages: int) -> None:
    """``messages`` notices for as many citizens, due now, written in bulk."""
    now = utcnow() - dt.timedelta(seconds=1)
    rows: list[dict[str, Any]] = [
        {
            "id": uuid.uuid4(),
            "channel": "email",
            "recipient": f"burger{number}@example.nl",
            "template": "notice",
            "language": "nl",
            "subject": SUBJECT,
            "body": BODY,
            "meta": {"party_name": f"Burger {number}", "agency_name": "Dienst Toeslagen"},
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for number in range(messages)
    ]
    async with database.session() as session:
        connection = await session.connection()
        for start in range(0, len(rows), 1000):
            await connection.execute(insert(OutboxItem), rows[start : start + 1000])


async def empty_outbox(database: Database) -> None:
    """No rows, and on PostgreSQL no dead rows of the last round either (VACUUM): every
    round starts from the same table."""
    async with database.session() as session:
        connection = await session.connection()
        await connection.execute(delete(OutboxItem))
    if database.dialect == "postgresql":
        async with database.reader.connect() as connection:
            await connection.execute(text("VACUUM ANALYZE outbox"))


async def outbox_statuses(database: Database) -> dict[str, int]:
    async with database.session() as session:
        rows = await session.exec(
            select(OutboxItem.status, func.count()).group_by(col(OutboxItem.status))
        )
        return dict(rows.all())


async def outbound_messages(database: Database) -> list[Outbound]:
    async with database.session() as session:
        items = (await session.exec(select(OutboxItem))).all()
    return [
        Outbound(
            id=i.id,
            channel=i.channel,
            recipient=i.recipient,
            subject=i.subject,
            body=i.body,
            language=i.language,
            template=i.template,
            context=dict(i.meta),
        )
        for i in items
    ]


async def hub_delivery(database: Database, settings: Settings, concurrency: int) -> float:
    """Seconds the worker's rounds take to empty the outbox."""
    adapters = AdapterRegistry()
    adapter = SmtpAdapter(settings)
    adapters.register(adapter)
    worker = Worker(
        database=database,
        adapters=adapters,
        catalog=load_catalog(None),
        broker=None,
        timezone=settings.timezone,
        concurrency=concurrency,
    )
    started = time.perf_counter()
    while await worker.run_once():
        pass
    elapsed = time.perf_counter() - started
    await adapter.close()
    return elapsed


async def direct_delivery(
    mails: list[tuple[str, bytes]], settings: Settings, concurrency: int
) -> float:
    """Seconds aiosmtplib takes to send ``mails`` (recipient, rendered message) over
    ``concurrency`` connections, each sending one mail after another."""
    assert settings.smtp_host is not None
    sender = MailComposer(settings).sender
    queue: Iterator[tuple[str, bytes]] = iter(mails)

    async def connection() -> None:
        client = aiosmtplib.SMTP(
            hostname=settings.smtp_host, port=settings.smtp_port, local_hostname="hub.test"
        )
        await client.connect()
        for recipient, mail in queue:
            await client.sendmail(sender, [recipient], mail)
        await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(min(concurrency, len(mails)))))
    return time.perf_counter() - started


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Round:
    """One round: the baseline sends the round's mails, then the hub delivers them."""

    expected: set[str]
    direct_seconds: float
    direct_arrived: collections.Counter[str]
    hub_seconds: float
    hub_arrived: collections.Counter[str]
    statuses: dict[str, int]

    def exactly_once(self, arrived: collections.Counter[str]) -> bool:
        return set(arrived) == self.expected and set(arrived.values()) == {1}

    @property
    def all_arrived_once(self) -> bool:
        delivered = self.statuses == {"delivered": len(self.expected)}
        return (
            delivered
            and self.exactly_once(self.hub_arrived)
            and (self.exactly_once(self.direct_arrived))
        )


@dataclass
class Figures:
    messages: int
    concurrency: int
    rounds: list[Round]

    @property
    def hub_rate(self) -> float:
        return self.messages / statistics.median(r.hub_seconds for r in self.rounds)

    @property
    def direct_rate(self) -> float:
        return self.messages / statistics.median(r.direct_seconds for r in self.rounds)

    @property
    def ratio(self) -> float:
        """The median of the rounds' ratios: each round compares two runs close in time."""
        return statistics.median(r.direct_seconds / r.hub_seconds for r in self.rounds)


async def run(
    database: Database, *, messages: int, concurrency: int, folder: Path, rounds: int = 1
) -> Figures:
    """``rounds`` rounds, each into an emptied outbox: the baseline sends the round's mails
    straight to the sink, and the hub's worker delivers the same mails from the outbox, the
    one or the other first by turns. Pairs close in time, and the median of the rounds, keep
    a burst of load from elsewhere on the machine from favouring one side."""
    sink = await Sink.start(folder)
    settings = settings_for(sink.port, folder)
    composer = MailComposer(settings)
    done: list[Round] = []
    try:
        for _ in range(rounds):
            await empty_outbox(database)
            await fill_outbox(database, messages)
            outbound = await outbound_messages(database)
            mails = [(mail.recipient, mail.data) for mail in map(composer.compose, outbound)]
            # Who goes first changes every round.
            hub_first = len(done) % 2 == 1
            if hub_first:
                hub_seconds = await hub_delivery(database, settings, concurrency)
                hub_arrived = await sink.take()
            direct_seconds = await direct_delivery(mails, settings, concurrency)
            direct_arrived = await sink.take()
            if not hub_first:
                hub_seconds = await hub_delivery(database, settings, concurrency)
                hub_arrived = await sink.take()
            done.append(
                Round(
                    expected={composer.message_id(m) for m in outbound},
                    direct_seconds=direct_seconds,
                    direct_arrived=direct_arrived,
                    hub_seconds=hub_seconds,
                    hub_arrived=hub_arrived,
                    statuses=await outbox_statuses(database),
                )
            )
        return Figures(messages=messages, concurrency=concurrency, rounds=done)
    finally:
        await sink.stop()


async def admin(admin_url: str, statement: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(statement))
    await engine.dispose()


async def main(
    backend: str, admin_url: str, messages: int, concurrency: int, rounds: int
) -> Figures:
    name = f"hub_bench_{uuid.uuid4().hex[:8]}"
    folder = Path(tempfile.mkdtemp(prefix=name))
    if backend == "postgres":
        await admin(admin_url, f'CREATE DATABASE "{name}"')
        url = admin_url.rsplit("/", 1)[0] + f"/{name}"
        where = f"PostgreSQL ({make_url(admin_url).host})"
    else:
        url = f"sqlite+aiosqlite:///{folder}/hub.db"
        where = "SQLite"
    database = Database(url)
    try:
        await create_all(database)
        figures = await run(
            database, messages=messages, concurrency=concurrency, folder=folder, rounds=rounds
        )
    finally:
        await database.dispose()
        if backend == "postgres":
            await admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"Email delivery on {where}: {messages} messages a round, {concurrency} sent at once")
    for number, done in enumerate(figures.rounds, 1):
        print(
            f"round {number}: aiosmtplib {messages / done.direct_seconds:5.0f}/s, "
            f"hub {messages / done.hub_seconds:5.0f}/s, "
            f"ratio {done.direct_seconds / done.hub_seconds:.2f}; "
            f"all delivered, each arrived once: {done.all_arrived_once}"
        )
    print(f"aiosmtplib straight to the sink:  {figures.direct_rate:5.0f} messages/s (median)")
    print(f"hub, outbox -> worker -> SMTP:    {figures.hub_rate:5.0f} messages/s (median)")
    print(f"ratio of the medians:             {figures.hub_rate / figures.direct_rate:.2f}")
    print(f"ratio hub / aiosmtplib (median of the rounds): {figures.ratio:.2f} (aim: >= 0.70)")
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("HUB_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL),
        help="an admin URL of the PostgreSQL server; a database is created and dropped",
    )
    parser.add_argument("--messages", type=int, default=10_000, help="emails to deliver")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=CONCURRENCY,
        help="mails sent at once, by the worker and by the baseline (default: the worker's)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of baseline then hub (median taken)"
    )
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        asyncio.run(sink_server())
    else:
        asyncio.run(
            main(args.database, args.postgres, args.messages, args.concurrency, args.rounds)
        )
