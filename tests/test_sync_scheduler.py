"""When sync runs: backoff with jitter, the download window, the scheduled job."""

from __future__ import annotations

from datetime import datetime

import pytest

from fixtures.common import SCHOOL
from fixtures.servers import free_port
from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from hub_sync.hub import Hub
from provisioning.apply import apply_bundle
from provisioning.bundle import make_bundle
from edge_agent.sync.scheduler import SyncScheduler, backoff_delay, in_window, parse_window


def test_backoff_grows_exponentially_up_to_the_cap():
    top = lambda: 1.0  # noqa: E731  (the largest jitter draw)
    assert backoff_delay(0, rand=top) == 0
    assert [backoff_delay(n, base_s=30, cap_s=3600, rand=top) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff_delay(20, base_s=30, cap_s=3600, rand=top) == 3600
    assert backoff_delay(10_000, base_s=30, cap_s=3600, rand=top) == 3600


def test_backoff_jitter_spreads_schools_over_the_whole_interval():
    draws = [backoff_delay(5, base_s=30, cap_s=3600) for _ in range(500)]
    assert all(0 <= d <= 480 for d in draws)
    assert min(draws) < 100 and max(draws) > 380  # full jitter, not a fixed delay


@pytest.mark.parametrize("clock,inside", [("22:00", True), ("23:59", True), ("00:00", True), ("05:59", True),
                                          ("06:00", False), ("12:00", False), ("21:59", False)])
def test_default_window_crosses_midnight(clock, inside):
    now = datetime.fromisoformat(f"2026-09-01T{clock}:00")
    assert in_window("22:00-06:00", now) is inside


def test_daytime_window_and_always():
    noon, night = datetime(2026, 9, 1, 12, 0), datetime(2026, 9, 1, 23, 0)
    assert in_window("08:00-17:00", noon) and not in_window("08:00-17:00", night)
    assert in_window("always", night) and in_window("", noon)
    assert parse_window(" 22:00 - 06:00 ")[0].hour == 22
    with pytest.raises(ValueError):
        parse_window("late evening")


def test_unreachable_hub_backs_off_and_records_the_error(tmp_path, hub_db):
    app = Appliance.open(EdgeConfig.load(tmp_path / "e", {"free_space_reserve_mb": 1, "advertise": False,
                                                          "sync_interval_s": 300}))
    try:
        hub = Hub.init(tmp_path / "hub", reserve_mb=1, db_url=hub_db())
        make_bundle(hub, SCHOOL, "红星小学", f"http://127.0.0.1:{free_port()}",  # nobody listens there
                    f"rsync://127.0.0.1:{free_port()}/content", tmp_path / "bundle")
        hub.close()
        apply_bundle(app, tmp_path / "bundle")
        sched = SyncScheduler(app)
        delays = [sched.tick() for _ in range(3)]
        assert sched.failures == 3
        assert all(1 <= d <= 30 * 2 ** i for i, d in enumerate(delays))
        assert "cannot reach the hub" in app.status()["last_sync_error"]
    finally:
        app.close()


def test_unprovisioned_appliance_waits_the_normal_interval_and_stops_cleanly(tmp_path):
    app = Appliance.open(EdgeConfig.load(tmp_path / "e", {"free_space_reserve_mb": 1, "advertise": False,
                                                          "sync_interval_s": 123}))
    try:
        sched = SyncScheduler(app).start(first_delay_s=3600)
        assert sched.scheduler.get_job("school-edge-sync") is not None
        assert sched.tick() == 123 and sched.failures == 0
        sched.stop()
        assert not sched.scheduler.running
    finally:
        app.close()
