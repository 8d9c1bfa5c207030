"""Appliance software carried on a stick: ``<stick>/school-edge/firmware/<version>/``,
a signed release folder as ``school-edge hub firmware export`` writes it.

``edge import-usb`` and the provisioning stick's apply hand each such folder to
``edge_agent.sync.firmware_sync.stage_stick_release``: the signature is checked with
the firmware key of the appliance's trusted TUF metadata (the same root as the
network), then the files against the signed manifest, the school, and the version
rule; only then is it copied off the stick and installed. A folder that fails any
check is reported with its one clear line and nothing is changed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hub_sync.core.errors import Problem
from hub_sync.formats.firmware_release import MANIFEST_NAME, compare_versions, load_manifest, parse_version

from provisioning import stick

log = logging.getLogger(__name__)

FIRMWARE_DIR = "firmware"  # in the stick's school-edge folder, beside the schools' folders


def release_folders(stick_path: Path) -> list[Path]:
    """Release folders on the stick, newest version first (unreadable ones left out)."""
    root = stick.stick_root(Path(stick_path)) / FIRMWARE_DIR
    if not root.is_dir() or root.is_symlink():
        return []
    found = []
    for entry in root.iterdir():
        try:
            stick.check_name(entry.name)
            if entry.is_dir() and not entry.is_symlink():
                found.append((load_manifest((entry / MANIFEST_NAME).read_bytes()).version, entry))
        except (Problem, OSError):
            continue
    return [entry for _, entry in sorted(found, key=lambda f: parse_version(f[0]), reverse=True)]


def apply_firmware(appliance, stick_path: Path, install: bool = True) -> dict | None:
    """Install the newest release on the stick meant for this appliance; a summary
    for the import report, or None when the stick carries no release."""
    from edge_agent.sync.firmware_sync import installed_version, stage_stick_release

    folders = release_folders(stick_path)
    if not folders:
        return None
    newest = folders[0]
    version = load_manifest((newest / MANIFEST_NAME).read_bytes()).version
    if compare_versions(version, installed_version(appliance)) == 0:
        return {"version": version, "skipped": "已安装 already installed"}
    try:
        result = stage_stick_release(appliance, newest, install=install)
    except Problem as exc:
        log.warning("release %s on the stick refused: %s", version, exc.en)
        return {"version": version, "refused": str(exc)}
    return {"version": result.version, "action": result.action}
