"""Notices delivered while the delivery worker is killed (SIGKILL) and the database restarted:
every notice ends delivered, every mail arrives, and a mail arrives twice only where a kill
fell between handing it over and recording that — at most one per kill when the worker may
have only one mail handed over and unrecorded; a database restart repeats none, as the worker
keeps an outcome until the database takes it — and the hub noted every such mail as perhaps
sent twice (its outbox row counts an attempt for the claim that ran out unrecorded).

A PostgreSQL cluster of the test's own (tests/hardening/fault_run.py) so that the restart
disturbs no other test; a real SMTP server; ``hub worker`` as the process that is killed.
It takes about 40 s, the price of five kills and a restart of a real cluster: the long run
is bench/delivery_faults.py. The kill moments come from a seed printed at the start; replay
a failure with ``HUB_FAULTS_SEED=<seed>``.
"""

from __future__ import annotations

import itertools
import os
import random
from pathlib import Path

import pytest

from tests.hardening.fault_run import Plan, Result, postgres_bin, run

pytestmark = pytest.mark.skipif(
    postgres_bin() is None, reason="PostgreSQL's initdb and pg_ctl are not installed"
)

NOTICES = 300
KILLS = 5


def faults_between_repeats(result: Result) -> list[str]:
    """The Message-IDs received twice with no fault (kill or restart) between the two."""
    positions: dict[str, list[int]] = {}
    for index, line in enumerate(result.log):
        positions.setdefault(line, []).append(index)
    unexplained = []
    for message_id in result.received:
        for first, second in itertools.pairwise(positions[message_id]):
            if not any(not line.startswith("<") for line in result.log[first:second]):
                unexplained.append(message_id)
    return unexplained


async def test_kills_and_a_database_restart_lose_nothing_and_repeat_one_mail_per_kill(
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("HUB_FAULTS_SEED") or random.randrange(1 << 30))
    print(f"delivery faults: seed {seed} (replay with HUB_FAULTS_SEED={seed})")
    plan = Plan(
        notices=NOTICES,
        kills=KILLS,
        restarts=1,
        unrecorded_at_most=1,
        concurrency=4,
        claim_seconds=5.0,
        seed=seed,
        timeout=240.0,
    )
    result = await run(plan, tmp_path)
    print(result.summary())
    replay = f"seed {seed}: {result.summary()}"

    assert (result.kills, result.restarts) == (KILLS, 1), replay
    assert result.outbox == {"delivered": NOTICES}, replay
    assert result.notices == {"delivered": NOTICES}, replay
    # Every mail arrived, and nothing else did.
    assert set(result.received) == set(result.attempts), replay
    assert len(result.received) == NOTICES, replay
    # A kill leaves at most the one mail handed over and not yet recorded to go twice; a
    # database restart none: the worker holds the outcome until the database takes it.
    assert result.duplicates <= result.kills, replay
    assert not faults_between_repeats(result), replay
    # And the hub knows which mails those may be.
    assert not result.unaccounted, replay
