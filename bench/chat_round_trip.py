"""Chat round trip through the hub on PostgreSQL, next to the two costs it cannot avoid.

A citizen sends a chat line over the live socket; the hub stores it (a message and its event,
committed), fans it out, and the member of staff following the case receives it. The time
from send to receive is the round trip. In the same run, on the same machine:

- a bare ``websockets`` echo round trip (a server process that sends each frame back), and
- a bare single-row insert-and-commit on the same PostgreSQL server (asyncpg, autocommit).

The hub and the echo server each run in a process of their own; the clients run here.
The aim is a hub p50 of at most 1.5 times the sum of the two p50s. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.db import Database, create_all  # noqa: E402
from tests.builders import make_agency, make_case, make_party, token_for  # noqa: E402
from tests.live.harness import quick_staff  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
BODY = "Goedemiddag, ik heb een vraag over mijn toeslag voor dit jaar."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def measure(count: int, warmup: int, once: Callable[[int], Awaitable[None]]) -> list[float]:
    """Milliseconds per call of ``once`` (after ``warmup`` calls that are not counted)."""
    for n in range(warmup):
        await once(-1 - n)
    timings = []
    for n in range(count):
        started = time.perf_counter()
        await once(n)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


# --- the bare costs --------------------------------------------------------------------------


async def echo_server(port: int) -> None:
    async def echo(ws: ServerConnection) -> None:
        async for frame in ws:
            await ws.send(frame)

    async with serve(echo, "127.0.0.1", port):
        await asyncio.Future()


async def bare_echo(count: int, warmup: int) -> list[float]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--echo-server", str(port)
    )
    try:
        for _ in range(200):
            try:
                ws = await connect(f"ws://127.0.0.1:{port}")
                break
            except OSError:
                await asyncio.sleep(0.05)
        else:
            raise RuntimeError("the echo server did not start")
        frame = json.dumps({"type": "message", "case_id": str(uuid.uuid4()), "body": BODY})

        async def once(_: int) -> None:
            await ws.send(frame)
            await ws.recv()

        timings = await measure(count, warmup, once)
        await ws.close()
        return timings
    finally:
        process.terminate()
        await process.wait()


async def bare_insert(url: str, count: int, warmup: int) -> list[float]:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS bench_row (id uuid PRIMARY KEY, body text NOT NULL)"
        )

        async def once(_: int) -> None:
            await connection.execute("INSERT INTO bench_row VALUES ($1, $2)", uuid.uuid4(), BODY)

        return await measure(count, warmup, once)
    finally:
        await connection.close()


# --- the hub ---------------------------------------------------------------------------------


async def start_hub(url: str, data_dir: Path) -> tuple[asyncio.subprocess.Process, int]:
    port = free_port()
    env = {
        **os.environ,
        "HUB_ENVIRONMENT": "test",
        "HUB_DATABASE_URL": url,
        "HUB_HOST": "127.0.0.1",
        "HUB_PORT": str(port),
        "HUB_RUN_WORKER": "false",
        "HUB_DATA_DIR": str(data_dir),
        "HUB_WS_MESSAGES_PER_MINUTE": "1000000",
    }
    env.pop("HUB_REDIS_URL", None)
    hub = str(Path(sys.executable).with_name("hub"))
    log = (data_dir / "hub.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        hub, "serve", env=env, stdout=log, stderr=asyncio.subprocess.STDOUT
    )
    log.close()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(400):
            try:
                await client.get("/api/me")
                return process, port
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"the hub did not start; see {data_dir / 'hub.log'}")


async def live_socket(port: int, token: str) -> ClientConnection:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        response = await client.post(
            "/api/live/tickets", headers={"Authorization": f"Bearer {token}"}
        )
        response.raise_for_status()
        ticket = response.json()["ticket"]
    ws = await connect(f"ws://127.0.0.1:{port}/api/live")
    await ws.send(json.dumps({"type": "auth", "ticket": ticket}))
    assert json.loads(await ws.recv())["type"] == "ready"
    return ws


async def until(ws: ClientConnection, match: Callable[[dict[str, object]], bool]) -> None:
    while not match(json.loads(await ws.recv())):
        pass


async def hub_round_trip(url: str, data_dir: Path, count: int, warmup: int) -> list[float]:
    database = Database(url)
    await create_all(database)
    async with database.session() as session:
        await make_agency(session, "toeslagen")
        staff = await quick_staff(session, "toeslagen", "Sanne de Wit")
        party = await make_party(session, "Jan Jansen")
        case = await make_case(session, party)
    citizen_token = await token_for(database, "citizen", party.id)
    staff_token = await token_for(database, "staff", staff.id)
    await database.dispose()
    process, port = await start_hub(url, data_dir)
    try:
        citizen = await live_socket(port, citizen_token)
        staff_ws = await live_socket(port, staff_token)
        for ws in (citizen, staff_ws):
            await ws.send(json.dumps({"type": "follow", "case_id": str(case.id), "after": 0}))
            await until(ws, lambda f: f["type"] == "followed")
        case_id = str(case.id)

        async def once(n: int) -> None:
            ref = f"b{n}"
            await citizen.send(
                json.dumps({"type": "message", "case_id": case_id, "body": BODY, "ref": ref})
            )
            await until(
                staff_ws,
                lambda f: (
                    f["type"] == "event"
                    and f["kind"] == "message"
                    and isinstance(f["payload"], dict)
                    and f["payload"].get("body") == BODY
                    and f["actor_kind"] == "citizen"
                ),
            )
            # The citizen's ack and own echo are read between rounds, off the clock.

        async def drain(ws: ClientConnection) -> None:
            try:
                while True:
                    await ws.recv()
            except Exception:  # noqa: S110 - the socket closes at the end
                pass

        citizen_reader = asyncio.create_task(drain(citizen))
        timings = await measure(count, warmup, once)
        citizen_reader.cancel()
        await staff_ws.close()
        await citizen.close()
        return timings
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()


# --- the run ---------------------------------------------------------------------------------


async def admin(admin_url: str, statement: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(statement))
    await engine.dispose()


def line(name: str, timings: list[float]) -> str:
    return (
        f"{name:<38} p50 {statistics.median(timings):7.3f} ms   "
        f"p99 {percentile(timings, 0.99):7.3f} ms   (n={len(timings)})"
    )


async def main(admin_url: str, count: int, warmup: int) -> float:
    name = f"hub_bench_{uuid.uuid4().hex[:8]}"
    await admin(admin_url, f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    data_dir = Path(tempfile.mkdtemp(prefix=name))
    try:
        echo = await bare_echo(count, warmup)
        insert = await bare_insert(url, count, warmup)
        hub = await hub_round_trip(url, data_dir, count, warmup)
    finally:
        await admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    floor = statistics.median(echo) + statistics.median(insert)
    ratio = statistics.median(hub) / floor
    print(f"Chat round trip on PostgreSQL ({make_url(admin_url).host}), {count} rounds each")
    print(line("bare websockets echo", echo))
    print(line("bare insert-and-commit", insert))
    print(line("hub: citizen -> staff (stored, live)", hub))
    print(f"{'sum of the two bare p50s':<38}     {floor:7.3f} ms")
    print(f"ratio hub p50 / sum: {ratio:.2f} (aim: at most 1.50)")
    return ratio


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres",
        default=os.environ.get("HUB_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL),
        help="an admin URL of the PostgreSQL server; a database is created and dropped",
    )
    parser.add_argument("--count", type=int, default=1000, help="measured rounds per figure")
    parser.add_argument("--warmup", type=int, default=100, help="rounds before measuring")
    parser.add_argument("--echo-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        asyncio.run(echo_server(args.echo_server))
    else:
        asyncio.run(main(args.postgres, args.count, args.warmup))
