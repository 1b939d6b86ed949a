"""Case status reads through the hub on PostgreSQL, next to a bare endpoint in the same run.

A citizen opens the status view of one of their cases: ``GET /api/cases/{id}`` with their
session token, answered with the case, where it stands (stage k of n, whose turn, what next,
the expected date), the contact person and the agencies on it. The load comes from another
process (``wrk`` when it is installed, else an aiohttp client), spread over many citizens'
tokens and their cases, against:

- the hub (``hub serve``'s app under uvicorn, the delivery worker off, JSON logs at
  WARNING), with 1 and with 2 processes; and
- a bare FastAPI app that reads one row of the same ``case`` table by primary key with
  asyncpg and returns it as JSON, with 1 and with 2 processes, under the same uvicorn.

It prints requests per second, p50 and p99 for each, and the hub's rate as a share of the
bare endpoint's. The aim is at least 0.5. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


DEFAULT_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
HUB_PATH = "/api/cases/"
BARE_PATH = "/bare/cases/"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- the data --------------------------------------------------------------------------------


async def seed(url: str, *, cases: int, citizens: int) -> list[tuple[str, uuid.UUID]]:
    """Agencies and their staff, ``citizens`` citizens each logged in, and ``cases`` cases
    spread over them (every journey of the catalogue, each with its owner and the agencies
    taking part); returns one (token, case id) pair per case, the token its citizen's."""
    # Imported here, so that the load generator's and the bare server's processes need not.
    from hub.auth.sessions import hash_token, new_token
    from hub.cases.service import open_case
    from hub.db import Database, create_all, utcnow
    from hub.events.service import Actor
    from hub.models import Agency, Case, CaseParticipant, LoginSession, Party, StaffMember
    from hub.parties.service import bsn_is_valid
    from journeys.catalog import load_catalog

    catalog = load_catalog()
    database = Database(url)
    await create_all(database)
    journeys = [d for d in catalog.all() if d.agency != "any"]
    agencies = sorted(
        {d.agency for d in journeys} | {a for d in journeys for a in d.participating_agencies}
    )
    async with database.session() as session:
        for code in agencies:
            session.add(Agency(id=code, name=f"Agency {code}", opening_hours={}))
        await session.flush()
        owners = {}
        for code in agencies:
            staff = StaffMember(
                agency_id=code, email=f"owner@{code}.bench", display_name=f"Owner at {code}"
            )
            session.add(staff)
            owners[code] = staff
        await session.flush()
        template_party = Party(name="Template", bsn=None)
        session.add(template_party)
        await session.flush()
        templates = [
            await open_case(
                session,
                catalog=catalog,
                journey_id=d.id,
                party=template_party,
                actor=Actor.system(),
            )
            for d in journeys
        ]
    numbers = (str(n) for n in range(100_000_000, 999_999_999) if bsn_is_valid(str(n)))
    parties = [Party(name=f"Citizen {n}", bsn=next(numbers)) for n in range(citizens)]
    pairs: list[tuple[str, uuid.UUID]] = []
    tokens: dict[uuid.UUID, str] = {}
    expires = utcnow() + dt.timedelta(days=1)
    async with database.session() as session:
        session.add_all(parties)
        await session.flush()
        for party in parties:
            token = new_token()
            tokens[party.id] = token
            session.add(
                LoginSession(
                    token_hash=hash_token(token),
                    subject_kind="citizen",
                    subject_id=party.id,
                    identified_by="otp",
                    expires_at=expires,
                )
            )
        rows = []
        for n in range(cases):
            template = templates[n % len(templates)]
            party = parties[n % citizens]
            case = Case(
                reference=f"BN-2026-{n:06d}",
                journey_id=template.journey_id,
                journey_version=template.journey_version,
                agency_id=template.agency_id,
                party_id=party.id,
                title=template.title,
                stage=template.stage,
                status=template.status,
                state=template.state,
                owner_id=owners[template.agency_id].id,
                opened_channel="portal",
                expected_completion=template.expected_completion,
                last_seq=template.last_seq,
            )
            rows.append(case)
            pairs.append((tokens[party.id], case.id))
        session.add_all(rows)
        await session.flush()
        participants = {d.id: d.participating_agencies for d in journeys}
        session.add_all(
            CaseParticipant(case_id=case.id, agency_id=agency)
            for case in rows
            for agency in participants[case.journey_id]
        )
    async with database.engine.connect() as connection:
        await connection.execute(text("COMMIT"))
        await connection.execute(text("ANALYZE"))
    await database.dispose()
    return pairs


# --- the servers -----------------------------------------------------------------------------


def bare_app() -> Any:
    """The bare endpoint: one row of ``case`` by primary key (asyncpg pool, as large as the
    hub's), returned as JSON."""
    import asyncpg
    from fastapi import FastAPI, HTTPException

    pool: dict[str, asyncpg.Pool] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool["pool"] = await asyncpg.create_pool(
            os.environ["BENCH_BARE_DSN"], min_size=1, max_size=30
        )
        yield
        await pool["pool"].close()

    app = FastAPI(lifespan=lifespan)

    @app.get(BARE_PATH + "{case_id}")
    async def read_one(case_id: uuid.UUID) -> dict[str, Any]:
        row = await pool["pool"].fetchrow('SELECT * FROM "case" WHERE id = $1', case_id)
        if row is None:
            raise HTTPException(status_code=404)
        return dict(row)

    return app


def serve(kind: str, port: int, workers: int) -> None:
    """Run the hub's app (as ``hub serve`` does) or the bare app with ``workers`` processes."""
    import uvicorn

    if kind == "hub":
        from hub.cli import load_settings
        from hub.observability.logging import configure_logging

        settings = load_settings()
        uvicorn.run(
            "hub.app:create_app",
            factory=True,
            host="127.0.0.1",
            port=port,
            workers=workers,
            ws_max_size=settings.ws_max_frame_bytes,
            log_config=configure_logging(settings.log_style, settings.log_level),
        )
    else:
        uvicorn.run(
            "case_status:bare_app",
            factory=True,
            app_dir=str(Path(__file__).parent),
            host="127.0.0.1",
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,
        )


@asynccontextmanager
async def server(kind: str, url: str, workers: int, data_dir: Path) -> AsyncIterator[int]:
    """One server of ``kind`` on a free port until the block ends; yields the port."""
    port = free_port()
    env = {
        **os.environ,
        "HUB_ENVIRONMENT": "test",
        "HUB_DATABASE_URL": url,
        "HUB_RUN_WORKER": "false",
        "HUB_DATA_DIR": str(data_dir),
        "HUB_LOG_FORMAT": "json",
        "HUB_LOG_LEVEL": "WARNING",
        "BENCH_BARE_DSN": asyncpg_dsn(url),
    }
    env.pop("HUB_REDIS_URL", None)
    log_path = data_dir / f"{kind}-{workers}.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--serve",
            kind,
            "--port",
            str(port),
            "--workers",
            str(workers),
            env=env,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(600):
                try:
                    await client.get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            else:
                raise RuntimeError(f"the {kind} server did not start; see {log_path}")
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


# --- the load --------------------------------------------------------------------------------

WRK_SCRIPT = """
local targets = {}
local next_one = 1
function setup(thread)
  thread_count = (thread_count or 0) + 1
  thread:set("offset", thread_count * 7919)
end
function init(args)
  for line in io.lines(args[1]) do
    local token, case_id = line:match("(%S+) (%S+)")
    targets[#targets + 1] = {"Bearer " .. token, case_id}
  end
  next_one = (offset or 0) % #targets + 1
end
function request()
  local target = targets[next_one]
  next_one = next_one % #targets + 1
  return wrk.format("GET", "PREFIX" .. target[2], {["Authorization"] = target[1]})
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'FIGURES {"requests": %d, "seconds": %f, "errors": %d, "p50_ms": %f, "p99_ms": %f}\\n',
    summary.requests, summary.duration / 1e6,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3))
end
"""


@dataclass
class Figures:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def parse_figures(output: str) -> Figures:
    for line in output.splitlines():
        if line.startswith("FIGURES "):
            return Figures(**json.loads(line.removeprefix("FIGURES ")))
    raise RuntimeError(f"the load generator printed no figures:\n{output}")


async def load(
    client: str,
    port: int,
    prefix: str,
    targets: Path,
    *,
    connections: int,
    seconds: float,
    warmup: float,
    folder: Path,
) -> Figures:
    """Load the server from a process of its own: ``warmup`` seconds unmeasured, then
    ``seconds`` measured; its figures."""
    if client == "wrk":
        await run_load(wrk_command(port, prefix, targets, connections, warmup, folder))
        return await run_load(wrk_command(port, prefix, targets, connections, seconds, folder))
    return await run_load(
        [
            sys.executable,
            __file__,
            "--load",
            f"http://127.0.0.1:{port}{prefix}",
            "--targets",
            str(targets),
            "--connections",
            str(connections),
            "--seconds",
            str(seconds),
            "--warmup",
            str(warmup),
        ]
    )


def wrk_command(
    port: int, prefix: str, targets: Path, connections: int, seconds: float, folder: Path
) -> list[str]:
    script = folder / f"load-{prefix.strip('/').replace('/', '-')}.lua"
    script.write_text(WRK_SCRIPT.replace("PREFIX", prefix))
    return [
        "wrk",
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}",
        "--",
        str(targets),
    ]


async def run_load(command: list[str]) -> Figures:
    """Run one load generator to its end; the figures it printed."""
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {err.decode()}")
    return parse_figures(out.decode())


async def python_load(
    base: str, pairs: list[list[str]], connections: int, seconds: float, warmup: float
) -> None:
    """The load generator when ``wrk`` is not installed: ``connections`` clients in a loop,
    ``warmup`` seconds unmeasured, then ``seconds`` measured."""
    import aiohttp

    timings: list[float] = []
    errors = 0
    deadline = 0.0

    async def client(offset: int, http: aiohttp.ClientSession) -> None:
        nonlocal errors
        n = offset
        while time.perf_counter() < deadline:
            token, case_id = pairs[n % len(pairs)]
            n += 1
            started = time.perf_counter()
            async with http.get(
                base + case_id, headers={"Authorization": f"Bearer {token}"}
            ) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
            timings.append((time.perf_counter() - started) * 1000)

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as http:
        if warmup > 0:
            deadline = time.perf_counter() + warmup
            await asyncio.gather(*(client(n * 7919, http) for n in range(connections)))
            timings.clear()
            errors = 0
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(client(n * 7919, http) for n in range(connections)))
        elapsed = time.perf_counter() - started
    ordered = sorted(timings) or [0.0]
    figures = {
        "requests": len(timings),
        "seconds": elapsed,
        "errors": errors,
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))],
    }
    print("FIGURES " + json.dumps(figures))


# --- the run ---------------------------------------------------------------------------------


async def admin(admin_url: str, statement: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(statement))
    await engine.dispose()


async def check_answers(port: int, kind: str, token: str, case_id: uuid.UUID) -> None:
    """One request before the load: the answer is the case (and for the hub, its status)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        path = (HUB_PATH if kind == "hub" else BARE_PATH) + str(case_id)
        response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
    response.raise_for_status()
    body = response.json()
    assert body["id"] == str(case_id), body
    if kind == "hub":
        assert body["status_view"]["stages"], body


@dataclass
class Result:
    kind: str
    workers: int
    runs: list[Figures]

    @property
    def rps(self) -> float:
        return statistics.median(f.rps for f in self.runs)

    @property
    def p50(self) -> float:
        return statistics.median(f.p50_ms for f in self.runs)

    @property
    def p99(self) -> float:
        return statistics.median(f.p99_ms for f in self.runs)


async def main(args: argparse.Namespace) -> dict[tuple[str, int], Result]:
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    name = f"hub_bench_{uuid.uuid4().hex[:8]}"
    await admin(args.postgres, f'CREATE DATABASE "{name}"')
    url = args.postgres.rsplit("/", 1)[0] + f"/{name}"
    folder = Path(tempfile.mkdtemp(prefix=name))
    results: dict[tuple[str, int], Result] = {}
    try:
        started = time.perf_counter()
        citizens = args.citizens or max(1, args.cases // 2)
        pairs = await seed(url, cases=args.cases, citizens=citizens)
        seeded = time.perf_counter() - started
        targets = folder / "targets.txt"
        targets.write_text("".join(f"{token} {case_id}\n" for token, case_id in pairs))
        for workers in args.processes:
            for round_ in range(args.rounds):
                # Alternate which goes first, so drift in the machine's load hits both alike.
                kinds = ("bare", "hub") if round_ % 2 == 0 else ("hub", "bare")
                for kind in kinds:
                    async with server(kind, url, workers, folder) as port:
                        await check_answers(port, kind, *pairs[0])
                        prefix = HUB_PATH if kind == "hub" else BARE_PATH
                        figures = await load(
                            client,
                            port,
                            prefix,
                            targets,
                            connections=args.connections,
                            seconds=args.seconds,
                            warmup=args.warmup,
                            folder=folder,
                        )
                    if figures.errors:
                        raise RuntimeError(f"{kind}: {figures.errors} requests failed")
                    results.setdefault((kind, workers), Result(kind, workers, [])).runs.append(
                        figures
                    )
    finally:
        await admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(folder, ignore_errors=True)
    report(args, client, citizens, seeded, results)
    return results


def report(
    args: argparse.Namespace,
    client: str,
    citizens: int,
    seeded: float,
    results: dict[tuple[str, int], Result],
) -> None:
    load_average = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    print(
        f"Case status reads on PostgreSQL ({make_url(args.postgres).host}): "
        f"{args.cases:,} cases of {citizens:,} citizens (seeded in {seeded:.1f} s); "
        f"load from {client}, {args.connections} connections, {args.seconds:g} s a run, "
        f"median of {args.rounds} run(s); {os.cpu_count()} CPUs, load average {load_average}"
    )
    print(f"{'':<44}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}")
    for workers in args.processes:
        for kind, label in (
            ("bare", "bare FastAPI + asyncpg, one row by key"),
            ("hub", "hub: GET /api/cases/{id} as the citizen"),
        ):
            result = results[(kind, workers)]
            print(
                f"{label + f', {workers} proc':<44}"
                f"{result.rps:>12,.0f}{result.p50:>10.2f}{result.p99:>10.2f}"
            )
    for workers in args.processes:
        ratio = results[("hub", workers)].rps / results[("bare", workers)].rps
        print(f"Ratio hub / bare requests/s, {workers} proc: {ratio:.2f} (aim: at least 0.50)")
    if len(args.processes) > 1:
        low, high = min(args.processes), max(args.processes)
        for kind in ("bare", "hub"):
            gain = results[(kind, high)].rps / results[(kind, low)].rps
            print(f"Scaling {kind}, {high} proc / {low} proc: {gain:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres",
        default=os.environ.get("HUB_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL),
        help="an admin URL of the PostgreSQL server; a database is created and dropped",
    )
    parser.add_argument("--cases", type=int, default=10_000, help="cases in the database")
    parser.add_argument("--citizens", type=int, help="citizens (default: half the cases)")
    parser.add_argument("--seconds", type=float, default=10, help="length of a measured run")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured load before each")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--rounds", type=int, default=1, help="runs per figure (median)")
    parser.add_argument(
        "--processes", type=int, nargs="+", default=[1, 2], help="API processes to try"
    )
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--serve", choices=("hub", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--targets", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.workers)
    elif args.load:
        pairs = [line.split() for line in args.targets.read_text().splitlines() if line]
        asyncio.run(python_load(args.load, pairs, args.connections, args.seconds, args.warmup))
    else:
        asyncio.run(main(args))
