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
