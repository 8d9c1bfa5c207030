"""The appliance software on the county hub: releases, rollout rules, publishing,
stick exports and what each device reports (all SQL of firmware here).

``publish_release`` checks a release folder against its manifest, keeps its files in
the hub's content store, records it and publishes the delegated TUF role
``firmware`` (signed by the hub's firmware key, ``keys/firmware.pem``, made on
first use) with, for each version the rollout rules may hand out::

    firmware/<V>/manifest.json      the manifest's bytes
    firmware/<V>/release.dsse       the release signed by the firmware key (version,
                                    downgrade flag, the schools it is for or null)
    firmware/<V>/wheels/<name>.whl  every file the manifest lists

and the rules themselves, ``firmware/rollout.json``. An appliance reads the rules
through the root it pins and fetches only the version meant for it.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tuf.api.metadata import TargetFile

from hub_sync.core.atomic_file import atomic_write
from hub_sync.core.errors import FormatError
from hub_sync.core.keys import generate_key, load_signer
from hub_sync.formats.firmware_release import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    ReleaseRefusedError,
    compare_versions,
    load_manifest,
    safe_relpath,
    sign_release,
    verify_files,
)
from hub_sync.formats.firmware_rollout import ROLLOUT_TARGET, Rules, load_rules, rules_bytes, set_paused, stage_release, widen
from hub_sync.hub.database import Database, transaction
from hub_sync.hub.publisher import FIRMWARE_KEY_FILE, link_published_files, publish_lock, repo_for

if TYPE_CHECKING:  # the Hub imports this module for its migrations
    from hub_sync.hub.hub import Hub


def firmware_signer(hub: Hub):
    """The hub's firmware key (made on first use, 0600 in the keys folder)."""
    path = hub.data_dir / "keys" / FIRMWARE_KEY_FILE
    return load_signer(path) if path.is_file() else generate_key(path)


def target_prefix(version: str) -> str:
    return f"firmware/{version}/"


# -- rules and releases ----------------------------------------------------------
def rules(hub: Hub) -> Rules:
    """The rollout rules as last saved (empty before the first release)."""
    row = hub.db.execute("select rules from firmware_rollout where id = 1").fetchone()
    return load_rules(row[0].encode()) if row else Rules()


def releases(hub: Hub) -> list[dict]:
    """Every release the hub holds, newest first."""
    rows = [dict(zip(("version", "manifest_sha256", "size", "files", "downgrade", "published_at"), r))
            for r in hub.db.execute("select version, manifest_sha256, size, files, downgrade, published_at "
                                    "from firmware_releases")]
    from packaging.version import Version

    return sorted(rows, key=lambda r: Version(r["version"]), reverse=True)


def _release(hub: Hub, version: str) -> dict:
    found = [r for r in releases(hub) if r["version"] == version]
    if not found:
        raise FormatError(f"平台上没有软件版本 {version}", f"the hub holds no release {version}")
    return found[0]


def _manifest_bytes(hub: Hub, version: str) -> bytes:
    return hub.store.path_for(_release(hub, version)["manifest_sha256"]).read_bytes()


def _signed_release(hub: Hub, version: str, current: Rules) -> bytes:
    """``release.dsse`` for ``version`` as the rules stand (who it is for)."""
    downgrade = bool(_release(hub, version)["downgrade"])
    return sign_release(_manifest_bytes(hub, version), firmware_signer(hub), downgrade, current.schools_for(version))


def publish_release(hub: Hub, release_dir: Path, schools: list[str] | None = None, percent: int | None = None,
                    downgrade: bool = False) -> dict:
    """Check ``release_dir`` (manifest, every file's size and sha256), keep its files,
    stage it (everyone, these schools and/or this percentage) and publish. A release
    older than one the county already hands out needs ``downgrade``. Nothing is
    recorded or published when a check fails."""
    try:
        manifest_data = (Path(release_dir) / MANIFEST_NAME).read_bytes()
    except OSError as exc:
        raise FormatError(f"{release_dir} 不是软件发布目录（没有 {MANIFEST_NAME}）",
                          f"{release_dir} is not a release folder (no {MANIFEST_NAME})") from exc
    manifest = load_manifest(manifest_data)
    verify_files(release_dir, manifest)
    current = rules(hub)
    newest = max(current.versions(), key=_version_key, default=None)
    if newest is not None and compare_versions(manifest.version, newest) < 0 and not downgrade:
        raise ReleaseRefusedError(
            f"版本 {manifest.version} 比正在发布的 {newest} 旧；要退回旧版本请加 --downgrade",
            f"release {manifest.version} is older than {newest}, which the county hands out; "
            "to go back, publish it with --downgrade")
    staged = stage_release(current, manifest.version, schools, percent)
    hub.store.check_space(manifest.total_size + len(manifest_data))
    for rel, entry in sorted(manifest.files.items()):
        hub.store.put_file(Path(release_dir) / safe_relpath(rel), expected_sha256=entry["sha256"])
    manifest_sha = hub.store.put_bytes(manifest_data).sha256
    with transaction(hub.db):
        hub.db.execute("insert into firmware_releases (version, manifest_sha256, size, files, downgrade, published_at)"
                       " values (?, ?, ?, ?, ?, ?) on conflict (version) do update set manifest_sha256 = excluded.manifest_sha256,"
                       " size = excluded.size, files = excluded.files, downgrade = excluded.downgrade,"
                       " published_at = excluded.published_at",
                       [manifest.version, manifest_sha, manifest.total_size, len(manifest.files), int(downgrade), time.time()])
    _save_and_publish(hub, staged)
    return {"version": manifest.version, "files": len(manifest.files), "size": manifest.total_size,
            "schools": staged.schools_for(manifest.version)}


def _version_key(version: str):
    from packaging.version import Version

    return Version(version)


def pause(hub: Hub, paused: bool = True) -> Rules:
    """Stop (or resume) every appliance from starting an update."""
    return _save_and_publish(hub, set_paused(rules(hub), paused))


def widen_rollout(hub: Hub, version: str | None = None, schools: list[str] | None = None,
                  percent: int | None = None) -> Rules:
    """Give a staged release more schools and/or a higher percentage."""
    return _save_and_publish(hub, widen(rules(hub), version, schools, percent))


def _save_and_publish(hub: Hub, new: Rules) -> Rules:
    with transaction(hub.db):
        hub.db.execute("insert into firmware_rollout (id, rules, updated_at) values (1, ?, ?)"
                       " on conflict (id) do update set rules = excluded.rules, updated_at = excluded.updated_at",
                       [rules_bytes(new).decode(), time.time()])
    publish_firmware(hub)
    return new


def publish_firmware(hub: Hub) -> None:
    """Sign and publish the firmware role: the rules and every release they may hand out."""
    current = rules(hub)
    signer = firmware_signer(hub)
    targets: dict[str, TargetFile] = {}

    def add(path: str, data: bytes | None = None, sha: str | None = None, size: int | None = None) -> None:
        if data is not None:
            blob = hub.store.put_bytes(data)
            sha, size = blob.sha256, blob.size
        targets[path] = TargetFile(length=int(size), hashes={"sha256": sha}, path=path)

    add(ROLLOUT_TARGET, rules_bytes(current))
    for version in sorted(current.versions()):
        manifest_data = _manifest_bytes(hub, version)
        add(target_prefix(version) + MANIFEST_NAME, manifest_data)
        add(target_prefix(version) + SIGNATURE_NAME, _signed_release(hub, version, current))
        for rel, entry in load_manifest(manifest_data).files.items():
            add(target_prefix(version) + rel, sha=entry["sha256"], size=entry["size"])
    repo = repo_for(hub)
    repo.firmware_signer = signer
    with publish_lock(hub):
        repo.publish_firmware(targets)
        link_published_files(hub)


def export_release(hub: Hub, version: str, out_dir: Path) -> Path:
    """Write the signed release folder of ``version`` (manifest, wheels, release.dsse)
    into ``out_dir`` for a stick; returns the folder. Refuses a non-empty folder."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FormatError(f"{out_dir} 不是空目录，未写入任何内容", f"{out_dir} is not empty; nothing written")
    manifest_data = _manifest_bytes(hub, version)
    manifest = load_manifest(manifest_data)
    tmp = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for rel, entry in manifest.files.items():
        dest = tmp / safe_relpath(rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(hub.store.path_for(entry["sha256"]), dest)
    atomic_write(tmp / MANIFEST_NAME, manifest_data)
    atomic_write(tmp / SIGNATURE_NAME, _signed_release(hub, version, rules(hub)))
    verify_files(tmp, manifest)
    if out_dir.exists():
        out_dir.rmdir()
    tmp.rename(out_dir)  # whole or absent: a stick pulled mid-export leaves only the .partial folder
    return out_dir


# -- what devices report ------------------------------------------------------------
def device_firmware(db: Database) -> list[dict]:
    """Each enrolled device's software as its last signed device report said
    (``hub_sync.hub.fleet``): device, school, version, last update result and reason,
    rollbacks; "-" for a device that never reported."""
    from hub_sync.hub.fleet import Fleet

    out = []
    for row in Fleet(db).list():
        fw = row.get("firmware") or {}
        out.append({"device_id": row["device_id"], "school_code": row["school_code"],
                    "version": fw.get("version") or row.get("version") or "-",
                    "last_result": fw.get("last_result") or "-", "last_reason": fw.get("last_reason") or "",
                    "rollbacks": int(fw.get("rollbacks") or 0) if isinstance(fw.get("rollbacks"), int) else 0,
                    "pending_version": fw.get("pending_version")})
    return out


def device_lines(db: Database) -> list[str]:
    """One line per device for ``hub status`` and ``hub devices``."""
    return [f"{d['device_id']:22} {d['school_code']:12} {d['version']:10} {d['last_result']:12} "
            f"回退 rollbacks {d['rollbacks']}" + (f"  ({d['last_reason']})" if d["last_reason"] and d["last_result"]
                                                  not in ("-", "none", "committed") else "")
            for d in device_firmware(db)]


def status(hub: Hub) -> dict:
    """What ``hub firmware status`` shows: rules, releases, devices per version."""
    per_version: dict[str, int] = {}
    for d in device_firmware(hub.db):
        per_version[d["version"]] = per_version.get(d["version"], 0) + 1
    return {"rules": rules(hub), "releases": releases(hub), "devices_per_version": per_version,
            "role_version": repo_for(hub).state().firmware_version}
