"""Delivery under faults: 10,000 notices while ``hub worker`` is killed (SIGKILL) at 20 random
moments and the database is restarted once.

A PostgreSQL cluster of its own in a temporary directory (initdb, pg_ctl; as root, run as the
``postgres`` user), migrated; an agency's bulk job routes one notice per citizen, all by email;
``hub worker`` sends them to a real SMTP server (aiosmtpd in a process of its own, which notes
the Message-ID of every mail it accepts). The kill moments and the restart fall at seeded
random counts of delivered rows; the run ends when every outbox row is final. It prints, per
run: the time, the statuses, the mails received and the duplicates (per kill), and how many of
those the hub had marked as perhaps sent twice. The machinery is tests/hardening/fault_run.py;
tests/hardening/test_delivery_faults.py is the small run CI makes.

By default two runs: with HUB_DELIVERY_UNRECORDED_AT_MOST=1 (at most one repeat per fault;
checked) and with the default bound of 4 x HUB_DELIVERY_CONCURRENCY (reported). See
bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.hardening.fault_run import Plan, Result, run  # noqa: E402


def problems(result: Result) -> list[str]:
    """What the run got wrong, if anything."""
    found = []
    plan = result.plan
    if result.outbox != {"delivered": plan.notices}:
        found.append(f"outbox not all delivered: {result.outbox}")
    if result.notices != {"delivered": plan.notices}:
        found.append(f"notices not all delivered: {result.notices}")
    if set(result.received) != set(result.attempts):
        found.append("the mails received are not the mails delivered")
    if result.unaccounted:
        found.append(f"{len(result.unaccounted)} duplicates the hub did not mark")
    if plan.unrecorded_at_most == 1 and result.duplicates > result.kills + result.restarts:
        found.append(f"{result.duplicates} duplicates for {result.kills + result.restarts} faults")
    return found


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notices", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--restarts", type=int, default=1, help="database restarts")
    parser.add_argument("--concurrency", type=int, default=16, help="HUB_DELIVERY_CONCURRENCY")
    parser.add_argument(
        "--bound",
        choices=("1", "default", "both"),
        default="both",
        help="HUB_DELIVERY_UNRECORDED_AT_MOST: 1, the default (4 x concurrency), or a run of each",
    )
    parser.add_argument(
        "--claim-seconds",
        type=float,
        default=10.0,
        help="HUB_DELIVERY_CLAIM_SECONDS: how soon a killed worker's rows are taken up again",
    )
    parser.add_argument("--seed", type=int, default=None, help="replay the kill moments of a run")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds, per run")
    args = parser.parse_args()

    seed = random.randrange(1 << 30) if args.seed is None else args.seed
    choices: dict[str, list[int | None]] = {"1": [1], "default": [None], "both": [1, None]}
    bounds = choices[args.bound]
    failed = False
    for bound in bounds:
        plan = Plan(
            notices=args.notices,
            kills=args.kills,
            restarts=args.restarts,
            unrecorded_at_most=bound,
            concurrency=args.concurrency,
            claim_seconds=args.claim_seconds,
            seed=seed,
            timeout=args.timeout,
        )
        print(f"\nseed {seed} (replay with --seed {seed}), unrecorded at most {bound or 'default'}")
        began = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="hub-faults-") as folder:

            def say(line: str, began: float = began) -> None:
                print(f"  {time.monotonic() - began:6.1f} s  {line}", flush=True)

            result = await run(plan, Path(folder), say=say)
        print(result.summary())
        for problem in problems(result):
            print(f"FAILED: {problem}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
