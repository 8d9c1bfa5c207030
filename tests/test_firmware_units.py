"""The appliance's firmware parts one at a time, without releases: the 503 answer on
the LAN port while switching, the database backup and its restore, the ``current``
link, the state file and the install lock."""

from __future__ import annotations

import os
import sqlite3

import httpx

from hub_sync.core.processes import free_port

from firmware.backup import has_backup, integrity_ok, restore_backup, take_backup
from firmware.installer import InstallLock, recover
from firmware.maintenance import MaintenanceFront
from firmware.slots import current_slot, point_current
from firmware.state import State, load_state, save_state


def test_the_lan_port_answers_503_in_both_languages_while_switching():
    port = free_port()
    front = MaintenanceFront("127.0.0.1", port)
    try:
        api = httpx.post(f"http://127.0.0.1:{port}/api/v1/progress", json={"x": 1})
        page = httpx.get(f"http://127.0.0.1:{port}/", headers={"Accept": "text/html,*/*"})
    finally:
        front.stop()
    assert api.status_code == 503 and api.headers["retry-after"] == "30"
    assert api.json()["error"]["code"] == "updating" and "updating" in api.json()["error"]["message_en"]
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
    assert "正在更新" in page.text and "updating its software" in page.text


def _db(path, rows):
    con = sqlite3.connect(path)
    with con:
        con.execute("pragma journal_mode=wal")
        con.execute("create table if not exists t (x)")
        con.executemany("insert into t values (?)", [[r] for r in rows])
    con.close()


def _rows(path):
    con = sqlite3.connect(path)
    try:
        return [r[0] for r in con.execute("select x from t order by x")]
    finally:
        con.close()


def test_a_restore_gives_back_the_database_as_it_was_before_the_migration(tmp_path):
    data, root = tmp_path / "data", tmp_path / "data" / "firmware"
    data.mkdir()
    _db(data / "edge.db", [1, 2, 3])
    assert take_backup(root, data) == ["edge.db"] and has_backup(root)
    _db(data / "edge.db", [4])  # what a new version on trial writes
    con = sqlite3.connect(data / "edge.db")
    with con:
        con.execute("create table added_by_migration (y)")
    con.close()
    _db(data / "extra.db", [9])  # a database the new version created
    assert restore_backup(root, data) == ["edge.db"]
    assert _rows(data / "edge.db") == [1, 2, 3] and not (data / "extra.db").exists()
    assert integrity_ok(data / "edge.db")


def test_current_is_swapped_by_one_rename_and_recovery_follows_the_state(tmp_path):
    root = tmp_path / "fw"
    (root / "slots" / "a").mkdir(parents=True)
    (root / "slots" / "b").mkdir()
    assert current_slot(root) is None
    point_current(root, "a")
    assert os.readlink(root / "current") == "slots/a" and current_slot(root) == "a"
    save_state(root, State(version="0.3.0", slot="b"))  # committed, killed before the switch
    assert recover(root, tmp_path) == "switched" and current_slot(root) == "b"
    point_current(root, None)
    assert not (root / "current").exists()


def test_an_install_that_died_before_the_trial_is_resolved_as_nothing_changed(tmp_path):
    root = tmp_path / "fw"
    save_state(root, State(version="0.2.0", slot=None, pending={"version": "0.3.0", "slot": "a", "step": "unpack"}))
    (root / "slots" / "a.new" / "flask").mkdir(parents=True)  # half a slot
    assert recover(root, tmp_path) == "failed"
    state = load_state(root)
    assert state.pending is None and state.version == "0.2.0" and state.rollbacks == 0
    assert state.last_result == "failed" and "during unpack" in state.last_reason
    assert not (root / "slots" / "a.new").exists() and state.history[-1]["version"] == "0.3.0"


def test_one_install_at_a_time(tmp_path):
    first, second = InstallLock(tmp_path), InstallLock(tmp_path)
    try:
        assert first.acquire(wait=False)
        assert not second.acquire(wait=False)
        first.release()
        assert second.acquire(wait=False)
    finally:
        first.close()
        second.close()
