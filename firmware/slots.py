"""The two software slots under a firmware root, and the ``current`` link.

Layout (root defaults to ``<data_dir>/firmware``)::

    slots/a/, slots/b/     each a ``pip install --target`` folder: the application and
                           every dependency; ``_release/`` keeps the release's manifest
                           and wheels (the basis of the next network update),
                           ``.slot.json`` is written last and marks the slot complete
    slots/<x>.new/         a slot being filled (removed by recovery if an install died)
    current -> slots/a     the slot that serves; swapped with one rename of a new link
    state.json             see ``firmware.state``

The running slot is never written to. Filling the idle slot reuses the running
slot's files for every wheel whose sha256 did not change (hard links: a release
that changes one module installs one wheel); the others are installed by
``pip install --no-index --no-deps --target`` from the release's own wheels.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

from hub_sync.core.atomic_file import atomic_write, fsync_dir
from hub_sync.formats.envelope import canonical_json
from hub_sync.formats.firmware_release import MANIFEST_NAME, WHEELS_DIR, Manifest

from firmware.errors import InstallError
from firmware.state import firmware_root, load_state

SLOT_NAMES = ("a", "b")
SLOTS_DIR = "slots"
CURRENT_LINK = "current"
SLOT_META = ".slot.json"
RELEASE_COPY = "_release"
NEW_SUFFIX = ".new"
PIP_TAIL_CHARS = 2000


def slot_path(root: Path, name: str) -> Path:
    """The folder of slot ``name``."""
    if name not in SLOT_NAMES:
        raise ValueError(f"no slot {name!r}")
    return Path(root) / SLOTS_DIR / name


def other_slot(name: str | None) -> str:
    """The idle slot beside ``name`` (slot ``a`` beside the factory install)."""
    return "b" if name == "a" else "a"


def current_slot(root: Path) -> str | None:
    """The slot the ``current`` link names, or None (the factory install serves)."""
    try:
        target = os.readlink(Path(root) / CURRENT_LINK)
    except (FileNotFoundError, OSError):
        return None
    name = Path(target).name
    return name if name in SLOT_NAMES else None


def point_current(root: Path, name: str | None) -> None:
    """Make ``current`` name slot ``name`` (None: the factory install) with one atomic rename."""
    root = Path(root)
    link = root / CURRENT_LINK
    if name is None:
        link.unlink(missing_ok=True)
    else:
        tmp = root / f".{CURRENT_LINK}.tmp"
        tmp.unlink(missing_ok=True)
        os.symlink(Path(SLOTS_DIR) / name, tmp)
        os.replace(tmp, link)
    fsync_dir(root)


def slot_meta(root: Path, name: str | None) -> dict | None:
    """The complete slot's record (version, manifest sha256, wheels), or None."""
    if name is None:
        return None
    try:
        return json.loads((slot_path(root, name) / SLOT_META).read_bytes())
    except (FileNotFoundError, ValueError):
        return None


def installed_release_dir(data_dir: str | Path) -> Path | None:
    """The folder of the release the appliance runs (manifest.json + wheels/), or None
    for the factory install: its files are the basis a network update fetches against."""
    root = firmware_root(data_dir)
    name = load_state(root).slot
    if name is None or slot_meta(root, name) is None:
        return None
    folder = slot_path(root, name) / RELEASE_COPY
    return folder if (folder / MANIFEST_NAME).is_file() else None


def clear_leftovers(root: Path) -> None:
    """Remove half-filled slots left by an install that was killed."""
    for name in SLOT_NAMES:
        shutil.rmtree(Path(root) / SLOTS_DIR / f"{name}{NEW_SUFFIX}", ignore_errors=True)


def _dist_info(slot: Path, wheel_name: str) -> Path | None:
    name, version, _, _ = parse_wheel_filename(wheel_name)
    for entry in slot.glob("*.dist-info"):
        dist, _, ver = entry.name[: -len(".dist-info")].rpartition("-")
        if canonicalize_name(dist) == name and ver == str(version):
            return entry
    return None


def _link_installed(old: Path, new: Path, dist_info: Path) -> bool:
    """Hard-link every file of one installed distribution (its RECORD) from ``old`` into ``new``."""
    files = [line.rsplit(",", 2)[0] for line in (dist_info / "RECORD").read_text("utf-8").splitlines() if line]
    for rel in files:
        if rel.startswith("../") or rel.startswith("/"):
            continue  # console scripts land outside the slot's packages; the service runs by module
        src = old / rel
        if not src.is_file():
            return False
        dest = new / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            os.link(src, dest)
    return True


def _pip_target(target: Path, wheels: list[Path]) -> None:
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}  # only the release's wheels, whatever this machine's pip says
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-index",
                           "--no-deps", "--upgrade", "--target", str(target), *map(str, wheels)],
                          capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout)[-PIP_TAIL_CHARS:].strip().splitlines()
        raise InstallError(f"安装软件包失败：{tail[-1] if tail else ''}", f"pip install failed: {' | '.join(tail[-3:])}")


def fill_slot(root: Path, name: str, release_dir: Path, manifest: Manifest, manifest_sha256: str,
              reuse_from: str | None) -> dict:
    """Install ``release_dir`` into slot ``name`` (never the running one), reusing the
    unchanged wheels of slot ``reuse_from``; returns {"reused": n, "installed": n}."""
    root = Path(root)
    final = slot_path(root, name)
    new = final.with_name(name + NEW_SUFFIX)
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    old_meta = slot_meta(root, reuse_from) or {}
    old_wheels = old_meta.get("wheels", {})
    old = slot_path(root, reuse_from) if reuse_from else None
    fresh: list[Path] = []
    reused = 0
    wheels: dict[str, str] = {}
    for rel in manifest.wheel_paths():
        filename, digest = Path(rel).name, manifest.files[rel]["sha256"]
        wheels[filename] = digest
        info = _dist_info(old, filename) if old is not None and old_wheels.get(filename) == digest else None
        if info is not None and _link_installed(old, new, info):
            reused += 1
        else:
            fresh.append(release_dir / rel)
    if fresh:
        _pip_target(new, fresh)
    copy = new / RELEASE_COPY
    (copy / WHEELS_DIR).mkdir(parents=True)
    for rel in [MANIFEST_NAME, *manifest.files]:
        os.link(release_dir / rel, copy / rel) if _same_device(release_dir, copy) else shutil.copy2(release_dir / rel,
                                                                                                    copy / rel)
    os.sync()  # the slot's files reach the disk before it is marked complete
    atomic_write(new / SLOT_META, canonical_json({"version": manifest.version, "manifest_sha256": manifest_sha256,
                                                  "wheels": wheels}))
    if final.exists():
        shutil.rmtree(final)
    os.replace(new, final)
    fsync_dir(final.parent)
    return {"reused": reused, "installed": len(fresh)}


def _same_device(a: Path, b: Path) -> bool:
    return os.stat(a).st_dev == os.stat(b).st_dev


def slot_matches(root: Path, name: str, manifest_sha256: str) -> bool:
    """True when slot ``name`` already holds, complete, the release with this manifest."""
    meta = slot_meta(root, name)
    return meta is not None and meta.get("manifest_sha256") == manifest_sha256
