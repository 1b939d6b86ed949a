"""A small run of bench/case_status.py, so the benchmark keeps working: it seeds citizens and
their cases, serves the hub and the bare endpoint with one and with two processes, loads each
from a process of its own (the Python client, which needs nothing beyond the dev extras), and
prints its figures. The figures themselves are for a quiet machine, not for CI."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_ADMIN_URL, POSTGRES_UP

BENCH = Path(__file__).resolve().parents[2] / "bench" / "case_status.py"
FIGURES = r" +[\d,]+ +[\d.]+ +[\d.]+$"


@pytest.mark.postgres
@pytest.mark.skipif(
    not POSTGRES_UP and os.environ.get("CI") != "true", reason="PostgreSQL not reachable"
)
async def test_the_status_read_benchmark_serves_every_read_and_prints_its_figures() -> None:
    command = [sys.executable, str(BENCH), "--postgres", POSTGRES_ADMIN_URL, "--cases", "120"]
    command += ["--seconds", "1", "--warmup", "0.3", "--connections", "4", "--client", "python"]
    result = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=240
    )

    # A failed request (anything but 200) ends the run with an error instead of figures.
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "120 cases of 60 citizens" in out
    assert "load from python, 4 connections" in out
    for processes in (1, 2):
        assert re.search(rf"bare FastAPI .*, {processes} proc{FIGURES}", out, re.M), out
        assert re.search(rf"hub: GET /api/cases/\{{id\}} .*, {processes} proc{FIGURES}", out, re.M)
        assert re.search(rf"Ratio hub / bare requests/s, {processes} proc: [\d.]+", out)
    assert re.search(r"Scaling hub, 2 proc / 1 proc: [\d.]+", out)
