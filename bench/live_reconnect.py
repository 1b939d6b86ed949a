"""Live events survive disconnects: the long run of tests/hardening/test_live_resume.py.

Chat lines (1,000 by default: the citizen's, staff replies and internal notes) are posted on
a hub served by ``hub serve`` on PostgreSQL, while clients (three as the citizen, two as
staff) keep dropping the live socket — abruptly or with a close frame — stay away for
0-120 s, reconnect and follow again from the highest ``seq`` they received. At the end every
client's events are held against the case's log as its viewer may see it: duplicates, gaps,
unexpected and out-of-order events must all be 0. With ``--redis`` two hub processes share
the database and fan out through Redis; each reconnect picks one at random and the lines are
posted on the first. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.db import Database, create_all  # noqa: E402
from tests.live.churn import Endpoint, Outcome, Scenario, run  # noqa: E402
from tests.live.harness import make_world  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def start_hub(
    url: str, data_dir: Path, redis_url: str | None
) -> tuple[asyncio.subprocess.Process, Endpoint]:
    port = free_port()
    env = {
        **os.environ,
        "HUB_ENVIRONMENT": "test",
        "HUB_DATABASE_URL": url,
        "HUB_HOST": "127.0.0.1",
        "HUB_PORT": str(port),
        "HUB_RUN_WORKER": "false",
        "HUB_DATA_DIR": str(data_dir),
    }
    env.pop("HUB_REDIS_URL", None)
    if redis_url:
        env["HUB_REDIS_URL"] = redis_url
    hub = str(Path(sys.executable).with_name("hub"))
    with (data_dir / "hub.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            hub, "serve", env=env, stdout=log, stderr=asyncio.subprocess.STDOUT
        )
    endpoint = Endpoint(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/api/live")
    async with httpx.AsyncClient(base_url=endpoint.http_url) as client:
        for _ in range(1200):
            try:
                await client.get("/api/me")
                return process, endpoint
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    process.kill()
    raise RuntimeError(f"the hub did not start; see {data_dir / 'hub.log'}")


async def admin(admin_url: str, statement: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(statement))
    await engine.dispose()


def report(outcome: Outcome, scenario: Scenario, processes: int) -> bool:
    """Print the figures; whether every client got every event once, in order."""
    expected = sum(len(v) for v in outcome.expected.values())
    received = sum(len(c.received) for c in outcome.clients)
    faults = {
        "duplicates": sum(outcome.duplicates(c) for c in outcome.clients),
        "gaps": sum(outcome.gaps(c) for c in outcome.clients),
        "unexpected": sum(outcome.unexpected(c) for c in outcome.clients),
        "out of order": sum(outcome.out_of_order(c) for c in outcome.clients),
    }
    resume = outcome.resume_ms
    print(
        f"Live reconnects: {outcome.posted} lines posted, {len(outcome.clients)} clients, "
        f"{processes} hub process(es){' through Redis' if processes > 1 else ''}, "
        f"online {scenario.online[0]:g}-{scenario.online[1]:g} s and away "
        f"{scenario.offline[0]:g}-{scenario.offline[1]:g} s between disconnects"
    )
    print(f"run                 {outcome.seconds:8.1f} s")
    print(f"events expected     {expected:8d}  (per client: the case's log as it may see it)")
    print(f"events received     {received:8d}")
    print(f"disconnects         {outcome.disconnects:8d}")
    print(f"reloads             {outcome.reloads:8d}")
    for name, count in faults.items():
        print(f"{name:<20}{count:8d}")
    print(
        f"resume latency      p50 {statistics.median(resume):.1f} ms   "
        f"p95 {percentile(resume, 0.95):.1f} ms   max {max(resume):.1f} ms   "
        f"(n={len(resume)}: from asking a ticket to holding every event committed before "
        "the server answered the follow)"
    )
    print(f"load average        {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ok = not any(faults.values()) and received == expected
    print("every client got every event once, in order" if ok else "FAULTS: see above")
    return ok


async def main(args: argparse.Namespace) -> bool:
    name = f"hub_bench_live_{uuid.uuid4().hex[:8]}"
    await admin(args.postgres, f'CREATE DATABASE "{name}"')
    url = args.postgres.rsplit("/", 1)[0] + f"/{name}"
    data_dir = Path(tempfile.mkdtemp(prefix=name))
    processes: list[asyncio.subprocess.Process] = []
    try:
        database = Database(url)
        await create_all(database)
        world = await make_world(database)
        count = 2 if args.redis else 1
        endpoints = []
        for n in range(count):
            hub_dir = Path(tempfile.mkdtemp(prefix=f"hub{n}-", dir=data_dir))
            process, endpoint = await start_hub(
                url, hub_dir, args.redis_url if args.redis else None
            )
            processes.append(process)
            endpoints.append(endpoint)
        scenario = Scenario(
            messages=args.messages,
            online=(0.0, args.online),
            offline=(0.0, args.offline),
            pace=args.seconds / args.messages,
            seed=args.seed,
        )
        began = time.monotonic()
        outcome = await run(
            endpoints,
            database,
            case_id=world.case_id,
            citizen_token=world.citizen_token,
            staff_token=world.staff_token,
            scenario=scenario,
            citizens=args.citizens,
            staff=args.staff,
        )
        outcome.seconds = time.monotonic() - began
        await database.dispose()
        return report(outcome, scenario, count)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            await process.wait()
        await admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres",
        default=os.environ.get("HUB_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL),
        help="an admin URL of the PostgreSQL server; a database is created and dropped",
    )
    parser.add_argument("--redis", action="store_true", help="two hub processes, fan-out by Redis")
    parser.add_argument(
        "--redis-url", default=os.environ.get("HUB_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    )
    parser.add_argument("--messages", type=int, default=1000, help="chat lines posted")
    parser.add_argument("--seconds", type=float, default=300, help="over how long they are posted")
    parser.add_argument("--online", type=float, default=20, help="most seconds between drops")
    parser.add_argument("--offline", type=float, default=120, help="most seconds away")
    parser.add_argument("--citizens", type=int, default=3)
    parser.add_argument("--staff", type=int, default=2)
    parser.add_argument("--seed", type=int, default=8)
    sys.exit(0 if asyncio.run(main(parser.parse_args())) else 1)
