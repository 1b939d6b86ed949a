"""A small run of bench/insights.py, so the benchmark keeps working: it fills a fresh
PostgreSQL database, asks for the page, the API and the CSV, and prints its figures. The
figures themselves are for a quiet machine, not for CI."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_ADMIN_URL, POSTGRES_UP

BENCH = Path(__file__).resolve().parents[2] / "bench" / "insights.py"


@pytest.mark.postgres
@pytest.mark.skipif(
    not POSTGRES_UP and os.environ.get("CI") != "true", reason="PostgreSQL not reachable"
)
async def test_the_insights_benchmark_fills_asks_and_prints_its_figures() -> None:
    command = [sys.executable, str(BENCH), "--postgres", POSTGRES_ADMIN_URL]
    command += ["--cases", "2000", "--repeat", "1"]
    result = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=240
    )

    # Any answer but 200 ends the run with an error instead of figures.
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"^2,000 cases \([\d,]+ of gemeente-utrecht\), [\d,]+ messages", out, re.M)
    for request in ("page /console/insights", "GET /api/insights ", "GET /api/insights.csv"):
        assert re.search(rf"^{re.escape(request)}.* +\d+ +\d+$", out, re.M), out
