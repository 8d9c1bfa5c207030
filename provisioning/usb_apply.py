"""Applying a provisioning stick on the appliance: plan first, then one transaction.

``plan_stick`` verifies what it can without the passphrase and says what applying
would do (what the technician page shows); ``apply_stick`` checks everything
(roster problems by line, content pack through TUF, free space), copies content
files, then in one database transaction sets identity and trust, creates accounts
and classes and switches the catalogue. If any check fails nothing is changed.
The stick's digest is recorded, so the same stick applied again changes nothing.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from hub_sync.core.atomic_file import atomic_write
from hub_sync.core.const import MIB
from hub_sync.core.sqlite_db import transaction
from hub_sync.client.sync_client import SyncClient
from hub_sync.core.trusted_clock import TrustedClock

from edge_agent.config import SETTINGS_FILE
from edge_agent.const import PINNED_ROOT_FILE

from provisioning.apply import apply_bundle, device_signer
from provisioning.content_pack import pack_folder, plan_from_pack, read_pack_marker
from provisioning.firmware_stick import apply_firmware
from provisioning.errors import IncompleteError
from provisioning.usb_provision import BUNDLE_DIR, StickInfo, choose_school, read_sealed_roster, verify_stick
from provisioning.verified_copy import import_verified

APPLIED_KEY = "usb_stick_applied"
SCRATCH_MAX_AGE_S = 3600


def trusted_now(appliance) -> float:
    """max(system clock, latest time the hub proved): a board without RTC may say 1970."""
    return appliance.clock.now_timestamp()


def _pinned(appliance) -> bytes | None:
    path = appliance.data_dir / PINNED_ROOT_FILE
    return path.read_bytes() if path.is_file() and appliance.identity("hub_url") else None


def load_stick(appliance, stick_path: Path, school: str | None = None) -> StickInfo:
    """Find and verify the stick's folder for this appliance."""
    folder = choose_school(Path(stick_path), appliance.school_code if appliance.identity("hub_url") else "", school)
    return verify_stick(folder, _pinned(appliance), trusted_now(appliance))


@contextmanager
def scratch_client(appliance, info: StickInfo) -> Iterator[SyncClient]:
    """A sync client whose TUF state is a scratch copy of the device's: verifying a pack
    (which makes ngclient store what it verified) changes nothing on the device until
    ``commit_scratch``; a refused or unapplied stick leaves the real state untouched."""
    from edge_agent.sync.content_sync import sync_dir

    real = sync_dir(appliance)
    scratch_root = appliance.data_dir / "usb"
    scratch_root.mkdir(parents=True, exist_ok=True)
    for old in scratch_root.glob("scratch-*"):  # left by a crash; an hour old cannot be in use
        try:
            stale = time.time() - old.stat().st_mtime > SCRATCH_MAX_AGE_S
        except FileNotFoundError:
            continue  # another plan (the watcher, a second request) just finished with it
        if stale:
            shutil.rmtree(old, ignore_errors=True)
    scratch = Path(tempfile.mkdtemp(dir=scratch_root, prefix="scratch-"))
    try:
        if (real / "tuf").is_dir():
            shutil.copytree(real / "tuf", scratch / "tuf")
        # a scratch clock starting at the device's proven time: what the pack proves reaches
        # the device's own clock only in ``commit_scratch``
        clock = TrustedClock(scratch / "clock.json")
        if (proven := appliance.clock.proven()) is not None:
            clock.prove(proven)
        yield SyncClient(scratch, info.bundle.hub_url, info.bundle.rsync_url, info.school_code, info.bundle.tuf_root,
                         appliance.store, bwlimit_kbps=appliance.config.sync_bwlimit_kbps, clock=clock)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def commit_scratch(appliance, client: SyncClient) -> None:
    """Make the metadata verified in the scratch state the device's own (file by file, renamed)."""
    from edge_agent.sync.content_sync import sync_dir

    real = sync_dir(appliance)
    for src in sorted(client.metadata_dir.glob("*.json")):
        atomic_write(real / "tuf" / src.name, src.read_bytes())
    proven = client.clock.proven()
    if proven is not None:
        appliance.clock.prove(proven)


def plan_stick(appliance, stick_path: Path, school: str | None = None) -> dict:
    """What applying this stick would do (verified, nothing changed)."""
    info = load_stick(appliance, stick_path, school)
    already = appliance.identity(APPLIED_KEY) == info.digest
    plan = {"kind": "provision", "school_code": info.school_code, "school_name": info.bundle.school_name,
            "hub_url": info.bundle.hub_url, "teaching_points": info.extras.get("teaching_points", []),
            "settings": info.extras.get("settings", {}), "roster": bool(info.extras.get("roster")),
            "needs_passphrase": bool(info.extras.get("roster")), "already_applied": already,
            "content": None, "actions": []}
    try:
        read_pack_marker(info.folder)
        with scratch_client(appliance, info) as client:
            content_plan, wanted = plan_from_pack(client, pack_folder(info.folder))
        plan["content"] = {"resources": len(content_plan.resources), "files": len(wanted),
                           "bytes": sum(w.size for w in wanted), "snapshot_version": content_plan.snapshot_version}
    except IncompleteError:
        if (info.folder / "content").exists():
            raise  # a half-written pack: the stick will be refused, say so now
        plan["content"] = None
    if already:
        plan["actions"] = ["这个U盘已经应用过，不会有任何变化 (this stick was applied already; nothing will change)"]
        return plan
    plan["actions"] = [f"设为学校 {info.school_code} {info.bundle.school_name} set the school",
                       f"信任县平台 {info.bundle.hub_url} trust the hub and pin its root key",
                       "生成设备密钥并把登记请求写回U盘 make the device key, write the enrollment request to the stick"]
    if plan["roster"]:
        plan["actions"].append("导入师生名单和班级（需要口令） create accounts and classes (passphrase needed)")
    if plan["content"]:
        c = plan["content"]
        plan["actions"].append(f"导入 {c['resources']} 个资源（{c['bytes'] / MIB:.1f} MB） import {c['resources']} resources")
    return plan


def apply_stick(appliance, stick_path: Path, passphrase: str | None = None, school: str | None = None,
                progress: Callable[[int], None] | None = None) -> dict:
    """Verify and apply a provisioning stick (see the module docstring); a summary."""
    from edge_agent.sync.content_sync import to_resources
    from edge_agent.spaces.errors import RosterError as SpaceRosterError
    from edge_agent.spaces.roster import class_problems, parse_roster, problems_json

    info = load_stick(appliance, stick_path, school)
    summary: dict = {"school_code": info.school_code, "school_name": info.bundle.school_name, "changed": False,
                     "device_id": appliance.device_id, "roster": None, "content": None}
    if appliance.identity(APPLIED_KEY) == info.digest:
        return summary
    # 1. everything is checked before anything changes
    rows = None
    roster = read_sealed_roster(info, passphrase)
    if roster is not None:
        rows, problems = parse_roster(roster)
        problems += class_problems(rows, [r[0] for r in appliance.db.execute("select name from classes")])
        if problems:
            raise SpaceRosterError(f"名单有 {len(problems)} 处问题，设备未做任何更改。请在县里改正名单后重新制作U盘",
                                   f"the roster has {len(problems)} problem(s); nothing was changed on the device; "
                                   "fix the roster and make the stick again", problems=problems_json(problems))
    content = None
    try:
        read_pack_marker(info.folder)
        has_pack = True
    except IncompleteError:
        has_pack = (info.folder / "content").exists()
        if has_pack:
            raise
    with scratch_client(appliance, info) as client:
        wanted = []
        if has_pack:
            content_plan, wanted = plan_from_pack(client, pack_folder(info.folder))
            resources = to_resources(content_plan)
            # 2. content files: verified copies, invisible until the catalogue switch below
            copied = import_verified(appliance.store, wanted, progress)
            content = (content_plan, resources)
            summary["content"] = {"resources": len(resources), "files": len(wanted), "bytes_copied": copied,
                                  "snapshot_version": content_plan.snapshot_version}
        # 3. keys and trust files (idempotent), then one transaction for the database
        device_signer(appliance.data_dir)
        _merge_settings(appliance.data_dir, info.extras.get("settings", {}))
        with transaction(appliance.db):
            apply_bundle(appliance, info.folder / BUNDLE_DIR)
            settings = info.extras.get("settings", {})
            appliance.set_identity(teaching_points=json.dumps(info.extras.get("teaching_points", []), ensure_ascii=False),
                                   timezone=str(settings.get("timezone", "")))
            if rows is not None:
                from edge_agent.spaces.roster_apply import apply_rows

                result = apply_rows(appliance.db, rows, actor="technician:usb")
                summary["roster"] = {k: result[k] for k in ("created", "updated", "classes_created", "staff_passwords")}
            if content is not None:
                from edge_agent.sync.content_sync import apply_plan

                appliance.db["sync_blobs"].insert_all(({"sha256": w.sha256} for w in wanted), ignore=True)
                apply_plan(appliance, *content)
            appliance.set_identity(**{APPLIED_KEY: info.digest})
        if content is not None:
            commit_scratch(appliance, client)
    summary["changed"] = True
    # a software release on the stick (provisioning.firmware_stick), once the pack's metadata is trusted
    summary["firmware"] = apply_firmware(appliance, Path(stick_path))
    summary["enrollment_request"] = str(info.folder / BUNDLE_DIR / f"enrollment-request-{appliance.device_id}.json")
    return summary


def _merge_settings(data_dir: Path, settings: dict) -> None:
    """Put the stick's device settings (sync window, bandwidth cap) into settings.json."""
    path = Path(data_dir) / SETTINGS_FILE
    current = json.loads(path.read_text("utf-8")) if path.is_file() else {}
    wanted = {k: settings[k] for k in ("sync_window", "sync_bwlimit_kbps") if k in settings}
    if any(current.get(k) != v for k, v in wanted.items()):
        current.update(wanted)
        atomic_write(path, json.dumps(current, ensure_ascii=False, indent=2).encode("utf-8"))


__all__ = ["plan_stick", "apply_stick", "load_stick", "trusted_now"]
