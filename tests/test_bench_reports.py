"""bench/reports.py at its smoke size runs end to end and ends with its result line."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from fixtures.common import REPO


@pytest.mark.slow
def test_the_reports_bench_prints_its_line_at_quick_size(tmp_path):
    done = subprocess.run([sys.executable, "bench/reports.py", "--quick", "--data", str(tmp_path / "bench")],
                          cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"report_p95_ms=\d+\.\d rollup_lag_s=\d+\.\d\d", last), last
    assert "0 not 200" in done.stdout
