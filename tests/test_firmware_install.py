"""Installing a release on the appliance (issue 11): built from this checkout, signed,
installed into the idle slot reusing the running one's unchanged packages, tried on a
local port, committed; refused with one clear line (and nothing changed) when it is
not for this appliance; rolled back by itself, database restored, when the new
version crashes at start or its migration fails halfway."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import zipfile

import pytest

from hub_sync.core.errors import FormatError, SignatureError
from hub_sync.formats.firmware_release import MANIFEST_NAME, ReleaseRefusedError, load_manifest

from firmware.backup import integrity_ok
from firmware.errors import InstallError, RollbackError
from firmware.installer import install, roll_back
from firmware.slots import current_slot, slot_meta
from firmware.state import summary

pytestmark = pytest.mark.slow


def snapshot(fw) -> dict:
    """Everything an install may change: the firmware root's files (names, sizes,
    link targets) and the database's content."""
    files = {}
    for dirpath, dirnames, filenames in os.walk(fw.root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, fw.root)
            if name == "install.lock":
                continue
            files[rel] = os.readlink(p) if os.path.islink(p) else (os.path.getsize(p) if os.path.isfile(p) else "dir")
    state = fw.root / "state.json"
    files["state.json"] = state.read_bytes() if state.exists() else None
    con = sqlite3.connect(fw.data_dir / "edge.db")
    try:
        db = con.execute("select count(*), max(seq) from journal").fetchone()
        tables = [r[0] for r in con.execute("select name from sqlite_master order by name")]
    finally:
        con.close()
    return {"files": files, "db": db, "tables": tables}


def test_a_release_carries_the_app_with_its_version_and_every_dependency(firmware_kit):
    release = firmware_kit.releases["0.3.0"]
    manifest = load_manifest((release / MANIFEST_NAME).read_bytes())
    assert manifest.version == "0.3.0" and manifest.min_from == "0.1.0"
    app = [p for p in manifest.wheel_paths() if "school_edge-" in p]
    assert app == ["wheels/school_edge-0.3.0-py3-none-any.whl"]
    with zipfile.ZipFile(release / app[0]) as z:
        assert '__version__ = "0.3.0"' in z.read("firmware/__init__.py").decode()
    names = {p.split("/")[1].split("-")[0].lower() for p in manifest.wheel_paths()}
    assert {"flask", "gunicorn", "tuf", "cryptography", "sqlite_utils", "httpx"} <= names
    # the dependency wheels were built once: later builds only build the application wheel
    seconds = firmware_kit.build_seconds
    assert seconds["0.3.0"] < seconds["0.2.0"] * 0.7, seconds


def test_the_cli_builds_a_release_listing_the_appliance_migrations(firmware_kit, tmp_path):
    out = tmp_path / "rel"
    done = subprocess.run(["python3", "-m", "edge_agent.cli", "firmware", "build",
                           "--version", "0.4.0", "--out", str(out), "--cache", str(firmware_kit.cache)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    manifest = load_manifest((out / MANIFEST_NAME).read_bytes())
    from edge_agent.appliance import MIGRATIONS

    assert manifest.migrations == tuple(f"{m.name}/{step}" for m in MIGRATIONS for step in m.names())
    assert len(manifest.migrations) > 10
    again = subprocess.run(["python3", "-m", "edge_agent.cli", "firmware", "build", "--version", "0.4.0",
                            "--out", str(out), "--cache", str(firmware_kit.cache)], capture_output=True, text=True)
    assert again.returncode == 1 and "not empty" in again.stderr and "Traceback" not in again.stderr


def test_an_update_installs_beside_the_running_slot_and_commits(fw_appliance, firmware_kit):
    before = fw_appliance.journal_ids()
    running = slot_meta(fw_appliance.root, "a")
    result = install(fw_appliance.root, firmware_kit.releases["0.3.0"], fw_appliance.data_dir, fw_appliance.keys)
    assert result.result == "committed", result.reason
    assert (result.previous, result.version) == ("0.2.0", "0.3.0")
    # one wheel changed: pip installed it, every other package was hard-linked from the running slot
    assert result.installed == 1 and result.reused >= 40
    assert slot_meta(fw_appliance.root, "a") == running  # the running slot untouched
    assert current_slot(fw_appliance.root) == "b"
    report = summary(fw_appliance.data_dir)
    assert report["version"] == "0.3.0" and report["slot"] == "b" and report["last_result"] == "committed"
    assert report["committed"] is True and report["rollbacks"] == 0
    assert integrity_ok(fw_appliance.data_dir / "edge.db")
    assert fw_appliance.journal_ids() == before
    with pytest.raises(RollbackError, match="going back needs a release"):
        roll_back(fw_appliance.root, fw_appliance.data_dir)


@pytest.mark.parametrize("variant, why", [("crash", "crash at start (test variant)"),
                                          ("bad-migration", "this migration fails halfway")])
def test_a_new_version_that_fails_is_rolled_back_with_the_database_restored(fw_appliance, firmware_kit, variant, why):
    before = snapshot(fw_appliance)
    result = install(fw_appliance.root, firmware_kit.releases[variant], fw_appliance.data_dir, fw_appliance.keys,
                     max_crashes=2)
    assert result.result == "rolled_back"
    # the reason names the count and quotes the new version's last words
    assert "crashed at start 2 times" in result.reason and why in result.reason, result.reason
    report = summary(fw_appliance.data_dir)
    assert report["version"] == "0.2.0" and report["slot"] == "a" and report["rollbacks"] == 1
    assert report["last_result"] == "rolled_back" and report["last_reason"] == result.reason
    assert current_slot(fw_appliance.root) == "a"
    after = snapshot(fw_appliance)
    assert after["db"] == before["db"] and after["tables"] == before["tables"]  # half a migration undone
    assert "broken_half_done" not in after["tables"]
    assert integrity_ok(fw_appliance.data_dir / "edge.db")


def _refusals(kit, tmp):
    def cut_short():
        r = kit.sign("0.3.0", tmp / "cut")
        wheel = next((r / "wheels").glob("flask-*.whl"))
        data = wheel.read_bytes()
        wheel.unlink()
        wheel.write_bytes(data[: len(data) // 2])
        return r

    def tampered():
        r = kit.sign("0.3.0", tmp / "tampered")
        wheel = next((r / "wheels").glob("school_edge-*.whl"))
        data = bytearray(wheel.read_bytes())
        wheel.unlink()
        data[100] ^= 1
        wheel.write_bytes(bytes(data))
        return r

    return {
        "cut short": (cut_short, FormatError, "cut short"),
        "tampered": (tampered, FormatError, "tampered"),
        "unknown key": (lambda: kit.sign("0.3.0", tmp / "stranger", signer=kit.stranger), SignatureError,
                        "unknown key"),
        "unsigned": (lambda: (lambda r: ((r / "release.dsse").unlink(), r)[1])(kit.sign("0.3.0", tmp / "unsigned")),
                     SignatureError, "not a signed release"),
        "downgrade": (lambda: kit.sign("0.2.0", tmp / "old"), ReleaseRefusedError, "older than the installed"),
        "other school": (lambda: kit.sign("0.3.0", tmp / "school", schools=["999999"]), ReleaseRefusedError,
                         "other schools"),
        "same version": (lambda: kit.sign("0.2.0", tmp / "same"), InstallError, "already installed"),
    }


@pytest.mark.parametrize("case", ["cut short", "tampered", "unknown key", "unsigned", "other school", "same version"])
def test_a_bad_release_is_refused_with_one_line_and_nothing_changes(fw_appliance, firmware_kit, tmp_path, case):
    make, error, message = _refusals(firmware_kit, tmp_path)[case]
    release = make()
    before = snapshot(fw_appliance)
    with pytest.raises(error, match=message) as caught:
        install(fw_appliance.root, release, fw_appliance.data_dir, fw_appliance.keys, school_code="330101")
    assert "\n" not in str(caught.value) and caught.value.zh != caught.value.en  # one line, Chinese and English
    assert snapshot(fw_appliance) == before


def test_a_downgrade_installs_only_when_signed_as_one(fw_appliance, firmware_kit, tmp_path):
    install(fw_appliance.root, firmware_kit.releases["0.3.0"], fw_appliance.data_dir, fw_appliance.keys)
    before = snapshot(fw_appliance)
    with pytest.raises(ReleaseRefusedError, match="older than the installed") as caught:
        install(fw_appliance.root, firmware_kit.sign("0.2.0", tmp_path / "old"), fw_appliance.data_dir,
                fw_appliance.keys)
    assert "\n" not in str(caught.value) and caught.value.zh != caught.value.en
    assert snapshot(fw_appliance) == before
    back = firmware_kit.sign("0.2.0", tmp_path / "down", downgrade=True)
    result = install(fw_appliance.root, back, fw_appliance.data_dir, fw_appliance.keys)
    assert result.result == "committed" and summary(fw_appliance.data_dir)["version"] == "0.2.0"
    # slot a still held 0.2.0 complete: nothing to install, only the switch
    assert current_slot(fw_appliance.root) == "a" and result.installed == 0


def test_a_release_too_big_for_the_free_space_is_refused(small_disk_appliance, firmware_kit, tmp_path):
    fw = small_disk_appliance
    before = snapshot(fw)
    with pytest.raises(InstallError, match="not enough free space"):
        install(fw.root, firmware_kit.releases["0.3.0"], fw.data_dir, fw.keys)
    assert snapshot(fw) == before and not fw.root.exists()
    assert summary(fw.data_dir)["last_reason"] == "no update yet"


def _cli(*args, env=None):
    import sys

    return subprocess.run([sys.executable, "-m", "edge_agent.cli", "firmware", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_the_cli_refuses_a_release_signed_by_an_unknown_key_in_one_line(fw_appliance, firmware_kit, tmp_path):
    release = firmware_kit.sign("0.3.0", tmp_path / "stranger", signer=firmware_kit.stranger)
    before = snapshot(fw_appliance)
    done = _cli("install", "--data", str(fw_appliance.data_dir), str(release))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "unknown key" in done.stderr and "签名" in done.stderr
    assert snapshot(fw_appliance) == before


def test_rollback_undoes_an_install_whose_installer_died_before_the_commit(fw_appliance, firmware_kit):
    before = fw_appliance.journal_ids()
    env = {**os.environ, "SCHOOL_EDGE_FIRMWARE_FAULT": "installer:commit"}
    died = _cli("install", "--data", str(fw_appliance.data_dir), str(firmware_kit.releases["0.3.0"]), env=env)
    assert died.returncode == -9
    report = summary(fw_appliance.data_dir)
    assert report["pending_version"] == "0.3.0" and report["committed"] is False and report["version"] == "0.2.0"
    done = _cli("rollback", "--data", str(fw_appliance.data_dir))
    assert done.returncode == 0, done.stderr
    report = summary(fw_appliance.data_dir)
    assert report["pending_version"] is None and report["last_result"] == "rolled_back" and report["rollbacks"] == 1
    assert "during commit" in report["last_reason"]
    assert current_slot(fw_appliance.root) == "a"
    assert integrity_ok(fw_appliance.data_dir / "edge.db") and fw_appliance.journal_ids() == before
    again = _cli("rollback", "--data", str(fw_appliance.data_dir))
    assert again.returncode == 1 and "no uncommitted update" in again.stderr
