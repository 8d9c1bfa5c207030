"""Databases, their WAL and shared memory, and keys are 0600 in 0700 folders, on the
appliance and on the hub: new ones are made so, and a data folder found looser (an
older version, a copy, a restore) is tightened when it is opened."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.const import DEVICE_KEY_FILE, HUB_ONLINE_KEY_FILE
from hub_sync.core.keys import generate_key, load_signer
from hub_sync.hub import Hub


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def open_edge(data_dir: Path) -> Appliance:
    return Appliance.open(EdgeConfig.load(data_dir, {"free_space_reserve_mb": 1, "advertise": False}))


def assert_private_db(folder: Path, name: str) -> None:
    assert mode(folder) == 0o700, oct(mode(folder))
    for suffix in ("", "-wal", "-shm"):
        f = folder / f"{name}{suffix}"
        assert f.exists(), f
        assert mode(f) == 0o600, (f, oct(mode(f)))


def test_a_new_appliance_keeps_its_database_and_key_private(tmp_path):
    old = os.umask(0o022)  # a usual umask: the modes must not depend on it
    try:
        app = open_edge(tmp_path / "data")
        app.set_identity(school_name="测试小学")  # a write: the WAL holds data now
        generate_key(app.data_dir / DEVICE_KEY_FILE)
        assert_private_db(app.data_dir, "edge.db")
        assert mode(app.data_dir / "keys") == 0o700 and mode(app.data_dir / DEVICE_KEY_FILE) == 0o600
        app.close()
    finally:
        os.umask(old)


def test_an_appliance_folder_left_readable_is_tightened_at_open(tmp_path):
    data = tmp_path / "data"
    open_edge(data).close()
    generate_key(data / DEVICE_KEY_FILE)
    (data / HUB_ONLINE_KEY_FILE).parent.mkdir()
    (data / HUB_ONLINE_KEY_FILE).write_text("{}")
    (data / "sync" / "tuf").mkdir(parents=True)
    (data / "sync" / "tuf" / "root.json").write_text("{}")
    loose = [data, data / "keys", data / "trust", data / "sync", data / "sync" / "tuf"]
    for d in loose:
        d.chmod(0o755)
    for f in [*data.glob("edge.db*"), data / DEVICE_KEY_FILE, data / HUB_ONLINE_KEY_FILE, data / "sync/tuf/root.json"]:
        f.chmod(0o644)
    app = open_edge(data)
    try:
        assert_private_db(data, "edge.db")
        for d in loose:
            assert mode(d) == 0o700, d
        for f in (data / DEVICE_KEY_FILE, data / HUB_ONLINE_KEY_FILE, data / "sync/tuf/root.json"):
            assert mode(f) == 0o600, f
    finally:
        app.close()


def test_a_new_hub_keeps_its_database_and_keys_private(tmp_path):
    hub = Hub.init(tmp_path / "hub", reserve_mb=1)
    try:
        hub.db.execute("create table if not exists probe (x)")
        assert_private_db(hub.data_dir, "hub.db")
        keys = hub.data_dir / "keys"
        assert mode(keys) == 0o700
        assert {p.name: mode(p) for p in keys.glob("*.pem")} == {"root.pem": 0o600, "online.pem": 0o600}
    finally:
        hub.close()


def test_a_hub_folder_left_readable_is_tightened_at_open(tmp_path):
    Hub.init(tmp_path / "hub", reserve_mb=1).close()
    folder = tmp_path / "hub"
    for d in (folder, folder / "keys"):
        d.chmod(0o755)
    for f in [*folder.glob("hub.db*"), *(folder / "keys").glob("*.pem")]:
        f.chmod(0o644)
    hub = Hub.open(folder, reserve_mb=1)
    try:
        assert_private_db(folder, "hub.db")
        assert mode(folder / "keys") == 0o700
        assert all(mode(p) == 0o600 for p in (folder / "keys").glob("*.pem"))
    finally:
        hub.close()


def test_a_key_found_readable_is_made_private_when_loaded(tmp_path):
    key = tmp_path / "k" / "device.pem"
    generate_key(key)
    key.chmod(0o644)
    load_signer(key)
    assert mode(key) == 0o600 and mode(key.parent) == 0o700
