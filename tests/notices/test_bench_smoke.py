"""A small run of bench/notices_bulk.py, so the benchmark keeps working: it routes every row
and prints its figures. (The figures themselves are for a quiet machine, not for CI.)"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_ADMIN_URL, POSTGRES_UP

BENCH = Path(__file__).resolve().parents[2] / "bench" / "notices_bulk.py"


@pytest.mark.postgres
@pytest.mark.skipif(
    not POSTGRES_UP and os.environ.get("CI") != "true", reason="PostgreSQL not reachable"
)
async def test_the_bulk_benchmark_routes_a_small_file_and_prints_its_figures() -> None:
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(BENCH), "--rows", "2000", "--postgres", POSTGRES_ADMIN_URL],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # 5 % never answered the topic; the rest go out (texts at night wait for the morning).
    assert "Job: done; accepted 1,900, not sent 100, duplicates 0, rejected 0" in out
    assert re.search(r"Accept and route: +[\d.]+ s = [\d,]+ notices/s", out)
    assert re.search(r"PostgreSQL COPY of [\d,]+ outbox rows", out)
    assert re.search(r"Ratio \(job notices/s ÷ COPY rows/s\): [\d.]+", out)
    assert re.search(r"peak [\d,]+ MB while it ran", out)
