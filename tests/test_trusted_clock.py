"""Trusted time has one home (``hub_sync.core.trusted_clock``, on the appliance
``Appliance.clock``): it only rises, whoever proves a time and in whatever order, and
the value an older version kept as an identity row is adopted once."""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta, timezone

import pytest

from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.const import TRUSTED_CLOCK_FILE
from hub_sync.core.trusted_clock import TrustedClock

T0 = datetime(2026, 9, 1, tzinfo=timezone.utc)


def test_a_clock_booted_at_1970_is_never_trusted_below_the_proven_time(tmp_path):
    clock = TrustedClock(tmp_path / "clock.json")
    assert clock.proven() is None and clock.now(T0) == T0
    assert clock.prove(T0) is True
    assert clock.now(datetime(1970, 1, 2, tzinfo=timezone.utc)) == T0
    assert clock.now(T0 + timedelta(days=3)) == T0 + timedelta(days=3)  # a right clock moves on by itself


def test_an_earlier_proof_never_lowers_the_clock(tmp_path):
    clock = TrustedClock(tmp_path / "clock.json")
    clock.prove(T0)
    assert clock.prove(T0 - timedelta(days=1)) is False
    assert clock.prove_timestamp((T0 - timedelta(seconds=1)).timestamp()) is False
    assert clock.proven() == T0
    assert TrustedClock(tmp_path / "clock.json").proven() == T0  # kept in the file, read back by anyone


def test_proofs_from_many_threads_at_once_leave_the_latest(tmp_path):
    moments = [T0 + timedelta(seconds=s) for s in range(200)]
    random.Random(7).shuffle(moments)
    path = tmp_path / "sync" / "clock.json"

    def prove(chunk):
        for moment in chunk:
            TrustedClock(path).prove(moment)

    threads = [threading.Thread(target=prove, args=(moments[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert TrustedClock(path).proven() == max(moments)


@pytest.mark.parametrize("content", [b"", b"{", b'{"proven": 5}', b'{"proven": "2026-09-01T00:00:00"}', b"[]"])
def test_an_unreadable_or_zoneless_file_proves_nothing(tmp_path, content):
    (tmp_path / "clock.json").write_bytes(content)
    clock = TrustedClock(tmp_path / "clock.json")
    assert clock.proven() is None and clock.now(T0) == T0
    assert clock.prove(T0) and clock.proven() == T0  # and the next verified time repairs it


def test_refuses_a_time_without_a_zone_and_ignores_impossible_seconds(tmp_path):
    clock = TrustedClock(tmp_path / "clock.json")
    with pytest.raises(ValueError):
        clock.prove(datetime(2026, 9, 1))
    assert not clock.prove_timestamp(float("nan")) and not clock.prove_timestamp(float("inf"))
    assert not clock.prove_timestamp(0) and clock.proven() is None


def _open(data_dir) -> Appliance:
    return Appliance.open(EdgeConfig.load(data_dir, {"free_space_reserve_mb": 1, "advertise": False}))


@pytest.mark.parametrize("row,file,expected", [
    (4_000_000_000.0, T0, datetime.fromtimestamp(4_000_000_000.0, timezone.utc)),  # the row was later
    (T0.timestamp() - 86400, T0, T0),                                               # the file was later
    (T0.timestamp(), None, T0),                                                     # only the row
])
def test_a_data_folder_of_the_previous_version_keeps_the_later_time_once(tmp_path, row, file, expected):
    app = _open(tmp_path / "edge")
    app.set_identity(trusted_time=repr(row))  # what the previous version kept beside the clock file
    if file is not None:
        TrustedClock(tmp_path / "edge" / TRUSTED_CLOCK_FILE).prove(file)
    app.close()
    for _ in range(2):  # adopted at the first open; the second finds nothing left to adopt
        app = _open(tmp_path / "edge")
        try:
            assert app.clock.proven() == expected
            assert app.identity("trusted_time") is None
        finally:
            app.close()
