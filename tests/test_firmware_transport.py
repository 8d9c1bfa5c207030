"""Appliance software over the link: published by the hub under its TUF role
``firmware``, staged, fetched only by the devices meant, moving little, refused
when anything is wrong (real hub server, real rsync daemon)."""

from __future__ import annotations

import json

import pytest
from tuf.api.metadata import Metadata

from edge_agent.sync.firmware_sync import RELEASES_DIR, update_firmware
from edge_agent.sync.content_sync import sync_dir
from hub_sync.core.errors import Problem
from hub_sync.formats.firmware_rollout import bucket
from hub_sync.formats.tuf_repo import FIRMWARE_ROLE, RESERVED_ROLES
from hub_sync.hub.channels import Channels
from hub_sync.hub.firmware_repo import rules

pytestmark = pytest.mark.slow

NEXT = "99.0.0"  # newer than any installed version


def _fetch(fwenv, **kw):
    return update_firmware(fwenv.app, install=False, **kw)


def test_publish_signs_a_firmware_role_delegated_from_targets(fwenv):
    result = fwenv.cli("publish", str(fwenv.release(NEXT)))
    assert result.exit_code == 0, result.output
    assert f"Published {NEXT}" in result.output
    targets = fwenv.published()
    assert f"firmware/{NEXT}/manifest.json" in targets and f"firmware/{NEXT}/release.dsse" in targets
    assert "firmware/rollout.json" in targets
    assert sum(p.startswith(f"firmware/{NEXT}/wheels/") for p in targets) == 6
    meta = fwenv.hub.repo_dir / "metadata"
    top = Metadata.from_bytes(max(meta.glob("*.targets.json"), key=lambda p: int(p.name.split(".")[0])).read_bytes())
    role = top.signed.delegations.roles[FIRMWARE_ROLE]
    assert role.keyids != [fwenv.hub.online_signer.public_key.keyid]  # its own key
    assert FIRMWARE_ROLE in RESERVED_ROLES
    with pytest.raises(Problem):
        Channels(fwenv.hub.db).put_channel(FIRMWARE_ROLE, "not a channel")
    # a later channel publish keeps the firmware role
    fwenv.add("yuwen-1", "r1", {"a.txt": b"hello"})
    fwenv.publish()
    assert f"firmware/{NEXT}/manifest.json" in fwenv.published()


def test_publish_then_fetch_a_verified_release(fwenv):
    src = fwenv.release(NEXT)
    assert fwenv.cli("publish", str(src)).exit_code == 0
    result = _fetch(fwenv)
    assert result.action == "staged" and result.version == NEXT
    assert fwenv.tree(result.release_dir) == fwenv.tree(src) | {"release.dsse": fwenv.tree(result.release_dir)["release.dsse"]}
    assert result.bytes_received >= result.release_size * 0.9
    # served over HTTP too: /tuf/targets by hash (the fallback transport) hands it out
    import httpx

    sha = json.loads((src / "manifest.json").read_bytes())["files"]["wheels/flask-3.0.0-py3-none-any.whl"]["sha256"]
    assert httpx.get(f"{fwenv.hub_url}/content/{sha}").status_code == 200


def test_outside_the_stage_fetches_nothing_until_widened(fwenv):
    mine = bucket(fwenv.app.device_id)
    assert fwenv.cli("publish", str(fwenv.release(NEXT)), "--schools", "OTHER1").exit_code == 0
    assert _fetch(fwenv).action == "none"
    assert not (sync_dir(fwenv.app) / RELEASES_DIR).exists()
    if mine > 0:
        assert fwenv.cli("widen", "--percent", str(mine)).exit_code == 0
        assert _fetch(fwenv).action == "none"  # just below its bucket: still out
    assert fwenv.cli("widen", "--percent", str(mine + 1)).exit_code == 0
    assert _fetch(fwenv).action == "staged"


def test_school_list_and_pause(fwenv):
    assert fwenv.cli("publish", str(fwenv.release(NEXT)), "--schools", f"OTHER1,{fwenv.app.school_code}").exit_code == 0
    assert fwenv.cli("pause").exit_code == 0
    assert _fetch(fwenv).action == "none"
    status = fwenv.cli("status")
    assert "PAUSED" in status.output and NEXT in status.output
    assert fwenv.cli("resume").exit_code == 0
    assert _fetch(fwenv).version == NEXT


def test_second_release_moves_only_the_changed_module(fwenv):
    assert fwenv.cli("publish", str(fwenv.release("98.0.0"))).exit_code == 0
    first = _fetch(fwenv)
    from edge_agent.sync.firmware_sync import finish, firmware_store
    from hub_sync.client.firmware_client import keep_only

    # as after an install: the store holds the installed release's files only
    keep_only(firmware_store(fwenv.app), first.release_dir)
    finish_dir = first.release_dir
    assert finish_dir.is_dir() and finish is not None
    assert fwenv.cli("publish", str(fwenv.release(NEXT))).exit_code == 0
    second = _fetch(fwenv)
    assert second.version == NEXT and second.files_fetched == 1  # the app wheel
    assert second.bytes_received < 0.15 * second.release_size


def test_older_release_refused_at_publish_unless_downgrade(fwenv):
    assert fwenv.cli("publish", str(fwenv.release(NEXT))).exit_code == 0
    before = (rules(fwenv.hub), fwenv.published())
    older = fwenv.cli("publish", str(fwenv.release("98.5.0")))
    assert older.exit_code == 1 and "--downgrade" in older.output and older.output.count("\n") == 1
    assert (rules(fwenv.hub), fwenv.published()) == before
    assert fwenv.cli("publish", str(fwenv.release("98.6.0")), "--downgrade").exit_code == 0
    assert rules(fwenv.hub).default == "98.6.0"


def test_tampered_release_folder_refused_at_publish(fwenv):
    src = fwenv.release(NEXT)
    wheel = src / "wheels" / "flask-3.0.0-py3-none-any.whl"
    wheel.write_bytes(wheel.read_bytes()[:-1] + b"x")
    before = fwenv.published()
    out = fwenv.cli("publish", str(src))
    assert out.exit_code == 1 and "tampered" in out.output and out.output.count("\n") == 1
    assert fwenv.published() == before and rules(fwenv.hub).default is None


def test_file_tampered_on_the_hub_is_refused_and_nothing_changes(fwenv):
    src = fwenv.release(NEXT)
    assert fwenv.cli("publish", str(src)).exit_code == 0
    sha = json.loads((src / "manifest.json").read_bytes())["files"]["wheels/tuf-5.0.0-py3-none-any.whl"]["sha256"]
    blob = fwenv.hub.store.path_for(sha)
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes()[:-3] + b"bad")  # same length, other bytes (the published link is the same inode)
    store = sync_dir(fwenv.app) / "firmware-store"
    with pytest.raises(Problem, match="does not match"):
        _fetch(fwenv)
    assert not (sync_dir(fwenv.app) / RELEASES_DIR / NEXT).exists()
    assert sha not in {p.parent.name + p.name for p in store.rglob("*") if p.is_file()}


# -- releases on a stick -------------------------------------------------------------
def _stick_release(fwenv, tmp_path, version: str, *publish_args: str):
    """Publish ``version``, let the appliance see the metadata (not the files: outside the
    window), export the signed release onto a stick folder."""
    assert fwenv.cli("publish", str(fwenv.release(version)), *publish_args).exit_code == 0
    update_firmware(fwenv.app, allow_download=False, install=False)
    folder = tmp_path / "stick" / "school-edge" / "firmware" / version
    out = fwenv.cli("export", version, "--out", str(folder))
    assert out.exit_code == 0, out.output
    return folder


def _appliance_state(fwenv) -> dict:
    return fwenv.tree(sync_dir(fwenv.app) / "firmware-store") | {
        "releases": str(sorted((sync_dir(fwenv.app) / RELEASES_DIR).glob("*")))}


def test_stick_release_is_verified_and_staged(fwenv, tmp_path):
    from edge_agent.sync.firmware_sync import stage_stick_release

    folder = _stick_release(fwenv, tmp_path, NEXT)
    assert (folder / "release.dsse").is_file()
    result = stage_stick_release(fwenv.app, folder, install=False)
    assert result.action == "staged" and result.version == NEXT
    assert fwenv.tree(result.release_dir) == fwenv.tree(folder)
    # its files are now the basis of the next network update: nothing left to move
    assert _fetch(fwenv).bytes_received == 0


@pytest.mark.parametrize("fault", ["tampered", "unknown key", "another school", "downgrade", "cut short"])
def test_bad_stick_release_refused_with_one_line_and_nothing_changed(fwenv, tmp_path, fault):
    from click.testing import CliRunner

    from edge_agent.cli import main
    from hub_sync.core.keys import generate_key
    from hub_sync.formats.firmware_release import sign_release

    version = "0.0.5" if fault == "downgrade" else NEXT
    args = ("--schools", "OTHER1") if fault == "another school" else ()
    folder = _stick_release(fwenv, tmp_path, version, *args)
    wheel = folder / "wheels" / "flask-3.0.0-py3-none-any.whl"
    if fault == "tampered":
        wheel.write_bytes(b"x" + wheel.read_bytes()[1:])
    elif fault == "cut short":
        wheel.write_bytes(wheel.read_bytes()[:1000])
    elif fault == "unknown key":
        (folder / "release.dsse").write_bytes(sign_release((folder / "manifest.json").read_bytes(),
                                                           generate_key(tmp_path / "other.pem")))
    before = _appliance_state(fwenv)
    result = CliRunner().invoke(main, ["edge", "import-usb", str(tmp_path / "stick"), "--data", str(fwenv.app.data_dir)])
    assert result.exit_code == 0, result.output
    line = [ln for ln in result.output.splitlines() if ln.startswith("软件 software")]
    expected = {"tampered": "tampered", "unknown key": "unknown key", "another school": "other schools",
                "downgrade": "older than the installed", "cut short": "cut short"}[fault]
    assert len(line) == 1 and expected in line[0], result.output
    assert _appliance_state(fwenv) == before


def test_changed_wheel_moves_only_its_changed_blocks_against_the_installed_copy(fwenv, tmp_path):
    from edge_agent.sync.firmware_sync import firmware_client
    from hub_sync.client.firmware_client import check_offer, fetch_release, keep_only
    from hub_sync.formats.firmware_release import build_manifest, manifest_bytes

    sizes = {"school_edge-app-py3-none-any.whl": 2_000_000, "six-1.16-py3-none-any.whl": 50_000}
    first = fwenv.release("98.0.0", sizes=sizes)
    assert fwenv.cli("publish", str(first)).exit_code == 0
    installed = _fetch(fwenv).release_dir
    keep_only(firmware_client(fwenv.app).store, installed)
    # the next version changes one module inside the app wheel: 200 bytes in the middle
    second = tmp_path / "second"
    import shutil

    shutil.copytree(first, second)
    app = second / "wheels" / "school_edge-app-py3-none-any.whl"
    data = bytearray(app.read_bytes())
    data[1_000_000:1_000_200] = bytes(200)
    app.write_bytes(bytes(data))
    (second / "manifest.json").write_bytes(manifest_bytes(build_manifest(second, NEXT, "0.0.1", [], "", "3.11")))
    assert fwenv.cli("publish", str(second)).exit_code == 0
    client = firmware_client(fwenv.app)
    offer = check_offer(client, fwenv.app.device_id, fwenv.app.school_code)
    report = fetch_release(client, offer, tmp_path / "out", basis_dir=installed)
    assert report.files == 1 and 0 < report.bytes_received < 0.05 * len(data), report
    assert fwenv.tree(tmp_path / "out")["wheels/school_edge-app-py3-none-any.whl"] == fwenv.tree(second)[
        "wheels/school_edge-app-py3-none-any.whl"]


def test_hub_status_and_devices_show_each_devices_version_last_result_and_rollbacks(fwenv):
    from dataclasses import replace

    from edge_agent.sync.usage_sync import upload_pending
    from firmware.state import RESULT_ROLLED_BACK, firmware_root, load_state, save_state

    assert fwenv.cli("publish", str(fwenv.release(NEXT))).exit_code == 0
    # as the installer leaves it after a new version failed its health check
    root = firmware_root(fwenv.app.data_dir)
    save_state(root, replace(load_state(root), rollbacks=1, last_result=RESULT_ROLLED_BACK,
                             last_reason="the new version's status did not answer within 60 s"))
    upload_pending(fwenv.app)  # the signed device report goes up with the usage
    from click.testing import CliRunner

    from edge_agent.cli import main

    status = CliRunner().invoke(main, ["hub", "status", "--data", str(fwenv.hub.data_dir)])
    devices = CliRunner().invoke(main, ["hub", "devices", "--data", str(fwenv.hub.data_dir)])
    for out in (status, devices):
        assert out.exit_code == 0, out.output
        line = next(ln for ln in out.output.splitlines() if fwenv.app.device_id in ln and "rollbacks" in ln)
        assert load_state(root).version in line and "rolled_back" in line and "rollbacks 1" in line
        assert "did not answer" in line
    assert f"default: {NEXT}" in status.output


def test_a_version_that_rolled_back_here_is_not_fetched_again_by_itself(fwenv):
    from dataclasses import replace

    from firmware.state import firmware_root, load_state, save_state

    assert fwenv.cli("publish", str(fwenv.release(NEXT))).exit_code == 0
    root = firmware_root(fwenv.app.data_dir)
    state = load_state(root)
    save_state(root, replace(state, rollbacks=1, history=[{"at": 1.0, "result": "rolled_back", "version": NEXT,
                                                           "reason": "health check failed"}]))
    assert _fetch(fwenv).action == "failed_before"
    assert not (sync_dir(fwenv.app) / RELEASES_DIR).exists()
    assert _fetch(fwenv, retry=True).action == "staged"  # the technician's 'edge update --retry'


def test_without_the_rsync_port_the_release_comes_over_http_ranges(fwenv):
    from hub_sync.core.processes import free_port

    src = fwenv.release(NEXT)
    assert fwenv.cli("publish", str(src)).exit_code == 0
    fwenv.app.set_identity(rsync_url=f"rsync://127.0.0.1:{free_port()}/content")  # nothing listens there
    result = _fetch(fwenv)
    assert result.action == "staged" and result.transport == "http" and result.bytes_received >= result.release_size
    assert fwenv.tree(result.release_dir)["manifest.json"] == fwenv.tree(src)["manifest.json"]
