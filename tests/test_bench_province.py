"""bench/province.py at a tiny size runs end to end (PostgreSQL and SQLite hubs) and ends with its result line."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from fixtures.common import REPO

LAST_LINE = (r"pg_ingest_events_per_s=\d+\.\d pg_vs_sqlite=\d+\.\d{3} day_ingest_minutes=\d+\.\d\d"
             r" relay_events_per_s=(\d+\.\d|nan)")


@pytest.mark.slow
def test_the_province_bench_prints_its_line_at_a_tiny_size():
    done = subprocess.run([sys.executable, "bench/province.py", "--events", "20000", "--devices", "20", "--clients", "4",
                           "--profile-s", "0"], cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(LAST_LINE, last), last
    assert "held 20,000; 0 errors" in done.stdout  # both hubs stored every event, no post failed
    assert "NOT ALL STORED" not in done.stdout
