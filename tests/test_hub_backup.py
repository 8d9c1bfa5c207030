"""Backing up and restoring the hub database (``school-edge hub backup/restore``), on SQLite
and on PostgreSQL (``hub_db``): what is backed up comes back, and every refusal changes nothing."""

from __future__ import annotations

import json
import sqlite3
import subprocess

import pytest
from click.testing import CliRunner

from edge_agent.cli import main
from edge_agent.sync.usage_sync import build_next_batch
from fixtures.common import REPO
from fixtures.usage import classroom_acts, enroll
from hub_sync.hub import Hub
from hub_sync.hub.accounts import Accounts
from hub_sync.hub.backup import HEADER_BYTES, MAGIC
from hub_sync.hub.ingest import UsageIngest
from hub_sync.hub.registry import Registry


def cli(*args: str, input: str | None = None):
    return CliRunner().invoke(main, ["hub", *args], input=input)


def snapshot(hub: Hub) -> tuple:
    """What the county would miss: devices, usage, accounts."""
    return (hub.db.execute("select device_id, school_code, status from devices order by device_id").fetchall(),
            hub.db.execute("select device_id, seq, verb from usage_events order by device_id, seq").fetchall(),
            hub.db.execute("select name, role, status from accounts order by name").fetchall())


@pytest.fixture
def county_hub(tmp_path, hub_db, appliance):
    """A hub with an enrolled device, 40 usage events from it and two accounts."""
    hub = Hub.init(tmp_path / "hub", reserve_mb=1, db_url=hub_db())
    enroll(appliance, hub)
    appliance.journal.append_many(classroom_acts(40))
    UsageIngest(hub.db).ingest(build_next_batch(appliance).envelope)
    Accounts(hub.db).add("wang", "bureau_admin", "correct horse battery")
    Accounts(hub.db).add("li", "viewer", "another long password")
    yield hub
    hub.close()


def test_a_backup_restores_devices_usage_and_accounts_after_the_data_is_destroyed(county_hub, tmp_path, appliance):
    before = snapshot(county_hub)
    assert len(before[1]) == 40
    out = tmp_path / "backups" / "county.backup"
    done = cli("backup", "--data", str(county_hub.data_dir), "--out", str(out))
    assert done.exit_code == 0, done.output
    assert "已备份 Backed up" in done.output and out.read_bytes().startswith(MAGIC)
    assert not [p for p in out.parent.iterdir() if p != out]  # no temp file left
    Registry(county_hub.db).revoke(appliance.device_id)
    county_hub.db.execute("delete from usage_events")
    county_hub.db.execute("delete from accounts where name = ?", ["li"])
    Accounts(county_hub.db).add("zhao", "viewer", "a third long password")
    assert snapshot(county_hub) != before
    county_hub.close()  # hub serve stopped
    refused = cli("restore", "--data", str(county_hub.data_dir), "--from", str(out), input="n\n")
    assert refused.exit_code != 0 and "Aborted" in refused.output
    done = cli("restore", "--data", str(county_hub.data_dir), "--from", str(out), "--yes")
    assert done.exit_code == 0, done.output
    assert "已恢复 Restored" in done.output
    restored = Hub.open(county_hub.data_dir, reserve_mb=1)
    try:
        assert snapshot(restored) == before
    finally:
        restored.close()


def _refused(hub: Hub, backup, *words: str) -> None:
    before = snapshot(hub)
    hub.close()
    result = cli("restore", "--data", str(hub.data_dir), "--from", str(backup), "--yes")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    line = result.output.strip()
    assert line.startswith("错误 Error:") and "\n" not in line and "nothing was changed" in line
    for word in words:
        assert word in line
    assert snapshot(hub) == before


def _backup(hub: Hub, out) -> None:
    assert cli("backup", "--data", str(hub.data_dir), "--out", str(out)).exit_code == 0


def test_a_backup_of_another_hub_is_refused(county_hub, tmp_path, hub_db):
    other = Hub.init(tmp_path / "other", reserve_mb=1, db_url=hub_db())
    _backup(other, tmp_path / "other.backup")
    other.close()
    _refused(county_hub, tmp_path / "other.backup", "another hub")


@pytest.mark.parametrize("damage", ["truncated", "flipped", "not a backup"])
def test_a_damaged_backup_is_refused(county_hub, tmp_path, damage):
    out = tmp_path / "county.backup"
    _backup(county_hub, out)
    data = bytearray(out.read_bytes())
    if damage == "truncated":
        data = data[: len(data) - 1000]
    elif damage == "flipped":
        data[len(MAGIC) + HEADER_BYTES + 500] ^= 0xFF
    else:
        data = b"hello" + data
    out.write_bytes(bytes(data))
    _refused(county_hub, out, "damaged or cut short")


def test_a_backup_of_a_newer_schema_is_refused(county_hub, tmp_path):
    out = tmp_path / "county.backup"
    _backup(county_hub, out)
    data = out.read_bytes()
    header = json.loads(data[len(MAGIC): len(MAGIC) + HEADER_BYTES])
    header["revision"] = "9999"
    out.write_bytes(MAGIC + json.dumps(header).encode().ljust(HEADER_BYTES) + data[len(MAGIC) + HEADER_BYTES:])
    _refused(county_hub, out, "9999", "newer")


def test_a_backup_of_the_other_engine_is_refused(county_hub, tmp_path):
    out = tmp_path / "county.backup"
    _backup(county_hub, out)
    data = out.read_bytes()
    header = json.loads(data[len(MAGIC): len(MAGIC) + HEADER_BYTES])
    header["engine"] = {"sqlite": "postgresql", "postgresql": "sqlite"}[header["engine"]]
    out.write_bytes(MAGIC + json.dumps(header).encode().ljust(HEADER_BYTES) + data[len(MAGIC) + HEADER_BYTES:])
    _refused(county_hub, out, "across engines")


def test_restore_is_refused_while_a_server_uses_the_database(county_hub, tmp_path):
    out = tmp_path / "county.backup"
    _backup(county_hub, out)
    county_hub.db.execute("delete from accounts where name = ?", ["li"])
    before = snapshot(county_hub)
    # a hub server: another process holding the database (its pool keeps the connection)
    holder = subprocess.Popen(["python3", "-c", "import sys; from hub_sync.hub import Hub; h = Hub.open(sys.argv[1], reserve_mb=1); "
                               "h.db.scalar('select count(*) from devices'); print('ready', flush=True); sys.stdin.read()",
                               str(county_hub.data_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = cli("restore", "--data", str(county_hub.data_dir), "--from", str(out), "--yes")
        assert result.exit_code == 1 and "stop it before restoring; nothing was changed" in result.output
        assert snapshot(county_hub) == before
    finally:
        holder.communicate("")


WRITER = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
c.execute("create table scratch (n integer, pad text)")
print("go", flush=True)
for i in range(300):
    c.execute("begin immediate")
    c.executemany("insert into scratch values (?, ?)", [(i, "x" * 4000)] * 10)
    c.execute("commit")
"""


def test_a_sqlite_backup_taken_while_writes_go_on_is_one_consistent_snapshot(tmp_path):
    from hub_sync.hub.backup import backup

    hub = Hub.init(tmp_path / "hub", reserve_mb=1)
    for i in range(5):
        Accounts(hub.db).add(f"user{i}", "viewer", "a long enough password")
    writer = subprocess.Popen(["python3", "-c", WRITER, str(hub.data_dir / "hub.db")], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "go"
        header = backup(hub.data_dir, tmp_path / "b")
    finally:
        writer.stdout.close()
        assert writer.wait(60) == 0
    assert header["engine"] == "sqlite" and header["revision"]
    (tmp_path / "copy.db").write_bytes((tmp_path / "b").read_bytes()[len(MAGIC) + HEADER_BYTES:])
    copy = sqlite3.connect(tmp_path / "copy.db")
    assert copy.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert copy.execute("select count(*) from accounts").fetchone()[0] == 5
    assert copy.execute("select count(*) % 10 from scratch").fetchone()[0] == 0  # whole transactions only
    copy.close()
    hub.close()
