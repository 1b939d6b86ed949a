"""The email delivery benchmark (bench/email_delivery.py), small: 200 mails from the outbox
through the worker to a real SMTP server in a process of its own, and the same 200 straight
from aiosmtplib; every mail arrives exactly once. Its figures are not checked here: they
depend on the machine."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from hub.db import Database

BENCH = Path(__file__).parents[2] / "bench" / "email_delivery.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_email_delivery", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_every_mail_arrives_exactly_once(database: Database, tmp_path: Path) -> None:
    bench = load_bench()
    figures = await bench.run(database, messages=200, concurrency=8, folder=tmp_path)

    [done] = figures.rounds
    assert done.statuses == {"delivered": 200}
    assert len(done.expected) == 200
    assert done.exactly_once(done.hub_arrived) and done.exactly_once(done.direct_arrived)
    assert done.all_arrived_once
    assert figures.hub_rate > 0 and figures.direct_rate > 0
