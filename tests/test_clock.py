"""The clock rule: expiry is checked against max(system clock, latest time a signed
hub message proved). The real appliance process runs with its clock at 1970 and
five years ahead (libfaketime)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from fixtures.common import REPO
from fixtures.sync import SyncEnv
from hub_sync.formats import tuf_repo
from hub_sync.core.trusted_clock import TrustedClock

needs_faketime = pytest.mark.skipif(shutil.which("faketime") is None, reason="faketime (libfaketime) not installed")


def test_trusted_clock_never_goes_below_a_proven_time(tmp_path):
    clock = TrustedClock(tmp_path / "clock.json")
    t0 = datetime(2026, 9, 1, tzinfo=timezone.utc)
    assert clock.proven() is None and clock.now(t0) == t0
    clock.prove(t0)
    assert clock.now(datetime(1970, 1, 2, tzinfo=timezone.utc)) == t0  # a clock that fell back to 1970
    later = t0 + timedelta(days=3)
    assert clock.now(later) == later  # a correct clock moves on by itself
    clock.prove(t0 - timedelta(days=1))  # an older proof never lowers it
    assert clock.proven() == t0


def _sync_at(env: SyncEnv, fake: str) -> subprocess.CompletedProcess:
    """Run the real ``school-edge edge sync`` with its clock set by faketime."""
    return subprocess.run(["faketime", "-f", fake, sys.executable, "-m", "edge_agent.cli", "edge", "sync",
                           "--data", str(env.app.data_dir), "--force"], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**os.environ})


@pytest.fixture
def one_lesson_published(env):
    """One lesson published at the hub of ``env`` (fixtures/sync.py)."""
    env.add("yuwen-1", "r1", {"index.html": b"<h1>a o e</h1>"})
    env.publish()


@pytest.mark.slow  # a real hub with thousands of resources, a real sync under faketime: 5-6 s
@pytest.mark.usefixtures("one_lesson_published")
@needs_faketime
def test_appliance_booted_at_1970_syncs_and_learns_the_hub_time(env):
    run = _sync_at(env, "@1970-01-02 00:00:00")
    assert run.returncode == 0, run.stdout + run.stderr
    assert env.ids() == ["r1"]
    proven = TrustedClock(env.app.data_dir / "sync" / "clock.json").proven()
    assert proven is not None and abs(proven - datetime.now(timezone.utc)) < timedelta(minutes=5)


@pytest.mark.slow  # a real hub with thousands of resources, a real sync under faketime: 5-6 s
@pytest.mark.usefixtures("one_lesson_published")
@needs_faketime
def test_at_1970_metadata_that_expired_before_a_proven_time_is_still_refused(env, monkeypatch):
    env.sync()  # proves "now"
    before = env.state()
    monkeypatch.setattr(tuf_repo, "SNAPSHOT_LIFETIME", timedelta(seconds=-60))  # a stale snapshot
    env.add("yuwen-1", "r2", {"a.bin": b"late"})
    env.publish()
    run = _sync_at(env, "@1970-01-02 00:00:00")
    assert run.returncode == 1 and "expired" in run.stderr, run.stdout + run.stderr
    assert env.state() == before


@pytest.mark.slow  # a real hub with thousands of resources, a real sync under faketime: 5-6 s
@pytest.mark.usefixtures("one_lesson_published")
@needs_faketime
def test_clock_years_ahead_refuses_with_a_clear_reason_and_keeps_the_old_catalogue(env):
    env.sync()
    before = env.state()
    env.add("yuwen-1", "r2", {"a.bin": b"new"})
    env.publish()
    run = _sync_at(env, "+1826d")
    assert run.returncode == 1 and "expired" in run.stderr and "clock" in run.stderr, run.stdout + run.stderr
    assert env.state() == before
    # the proven time is not pushed forward by the wrong clock: with the clock right again, sync works
    assert env.sync().catalogue_version > int(before[2])
