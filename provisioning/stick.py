"""A USB stick as school-edge uses it: layout, safe names, atomic writes, markers.

Layout (everything under one folder, so the stick can hold other files too)::

    <stick>/school-edge/<school_code>/
        bundle/                 the signed provisioning bundle (provision make)
        roster.sealed           the roster, encrypted (roster_seal)
        content/                content pack, hub -> school (content_pack)
        up/<device_id>/<n>/     an export, device -> hub (sneakernet)
        down/<device_id>/       acknowledgements, hub -> device (sneakernet)
        enrollment/<device_id>.json   signed enrollment request (provision apply)

Nothing read from a stick is trusted: every name is checked (no ``..``, no
absolute path, no separator, no symlink) before it is joined to a folder.
Every file is written to a temporary name, fsynced and renamed; a folder that
holds several files (an export, a pack) gets a ``COMPLETE.json`` marker last,
listing its files with sizes and sha256, so a stick pulled out half-way leaves a
folder without a marker, which readers ignore and the next run replaces.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from hub_sync.core.atomic_file import atomic_write
from hub_sync.core.const import MIB
from hub_sync.formats.envelope import canonical_json

from provisioning.errors import IncompleteError, NothingToDoError, StickTooSmallError, UnsafePathError, UsbError

ROOT = "school-edge"
MARKER = "COMPLETE.json"
# Room kept free on the stick beyond what we compute (directory entries, FAT clusters).
STICK_SLACK_BYTES = 1 * MIB
_BAD_CHARS = set('/\\\x00:*?"<>|')
MAX_NAME_CHARS = 200


def check_name(name: str) -> str:
    """A single safe file or folder name from a stick, or UnsafePathError."""
    if (not isinstance(name, str) or not name or name in (".", "..") or len(name) > MAX_NAME_CHARS
            or any(c in _BAD_CHARS or ord(c) < 32 for c in name) or name.startswith("~")):
        raise UnsafePathError(f"U盘上的文件名不安全，已拒绝：{name!r}", f"unsafe file name on the stick, refused: {name!r}")
    return name


def check_relpath(rel: str) -> list[str]:
    """Split a relative path like ``a/b.mp4`` into checked parts (no .., no absolute)."""
    if not isinstance(rel, str) or rel.startswith(("/", "\\")) or not rel:
        raise UnsafePathError(f"U盘上的路径不安全，已拒绝：{rel!r}", f"unsafe path on the stick, refused: {rel!r}")
    return [check_name(part) for part in rel.split("/")]


def safe_join(root: Path, rel: str) -> Path:
    """``root / rel`` after checking every part, refusing symlinks that lead out."""
    path = Path(root)
    for part in check_relpath(rel):
        path = path / part
        if path.is_symlink():
            raise UnsafePathError(f"U盘上有符号链接，已拒绝：{rel}", f"symbolic link on the stick, refused: {rel}")
    real_root = os.path.realpath(root)
    if os.path.commonpath([real_root, os.path.realpath(path)]) != real_root:
        raise UnsafePathError(f"路径越出了它的目录，已拒绝：{rel}", f"path leaves its folder, refused: {rel}")
    return path


def stick_root(stick: Path) -> Path:
    return Path(stick) / ROOT


def school_dir(stick: Path, school_code: str) -> Path:
    return stick_root(stick) / check_name(school_code)


def schools_on(stick: Path) -> list[str]:
    """School codes that have a folder on the stick (names checked; others skipped)."""
    root = stick_root(stick)
    if not root.is_dir() or root.is_symlink():
        return []
    found = []
    for entry in sorted(root.iterdir()):
        try:
            check_name(entry.name)
        except UnsafePathError:
            continue
        if entry.is_dir() and not entry.is_symlink() and entry.name != "firmware":  # releases (firmware_stick)
            found.append(entry.name)
    return found


@contextlib.contextmanager
def stick_io(stick: Path | str = "") -> Iterator[None]:
    """Turn a failing stick (pulled out, full, read-only, broken) into one clear refusal.

    Everything written is temporary-then-renamed and markers come last, so the
    message can promise that running the step again carries on.
    """
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StickTooSmallError("U盘已满，这一步没有完成。请清理U盘或换更大的U盘后再运行一次",
                                     f"the stick is full; this step did not finish: clear the stick or use a bigger one, "
                                     f"then run it again ({exc.strerror})") from exc
        raise UsbError(f"U盘读写出错（可能被拔出）：{exc.strerror}。请重新插好U盘后再运行一次，会从中断处继续",
                       f"reading or writing the stick {stick} failed (pulled out?): {exc.strerror}; "
                       "plug it in again and run the same step again, it carries on") from exc


# -- writing ------------------------------------------------------------------
def atomic_copy(src: Path, dst: Path, chunk: int = 8 * MIB) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` atomically; return (sha256, size) of what was written."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=".tmp-")
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as f:
            while block := f.read(chunk):
                digest.update(block)
                out.write(block)
                size += len(block)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest.hexdigest(), size


def check_room(stick: Path, needed_bytes: int, what: str = "") -> None:
    """Refuse, before anything is written, when the stick cannot hold ``needed_bytes``."""
    if not Path(stick).is_dir():
        raise NothingToDoError(f"找不到U盘目录 {stick}，请检查U盘是否插好", f"no stick folder {stick}; check the stick is plugged in")
    free = shutil.disk_usage(stick).free
    if needed_bytes + STICK_SLACK_BYTES > free:
        raise StickTooSmallError(
            f"U盘空间不足{('（' + what + '）') if what else ''}：需要 {needed_bytes / MIB:.1f} MB，只剩 {free / MIB:.1f} MB。"
            "请换一个更大的U盘或先清理它，什么都没有写入",
            f"the stick is too small{(' for ' + what) if what else ''}: {needed_bytes / MIB:.1f} MB needed, "
            f"{free / MIB:.1f} MB free; use a bigger stick or clear it (nothing was written)",
            needed=needed_bytes, free=free)


# -- markers --------------------------------------------------------------------
def file_entry(folder: Path, rel: str) -> dict:
    path = folder / rel
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(8 * MIB):
            digest.update(block)
    return {"path": rel, "size": path.stat().st_size, "sha256": digest.hexdigest()}


def write_marker(folder: Path, files: Iterable[dict], **info: object) -> None:
    """Mark ``folder`` complete (written last): its files with size and sha256."""
    atomic_write(folder / MARKER, canonical_json({"files": sorted(files, key=lambda f: f["path"]), **info}))


def read_marker(folder: Path, what: str = "") -> dict:
    """The marker of a complete folder, after checking every listed file is there in
    full (sizes; hashes are checked by whoever reads the bytes). IncompleteError otherwise."""
    label = what or folder.name
    marker = folder / MARKER
    if marker.is_symlink() or not marker.is_file():
        raise IncompleteError(
            f"{label} 没有写完（U盘可能被中途拔出），已忽略。请重新运行上一步",
            f"{label} is half-written (the stick may have been pulled out); ignored: run the previous step again")
    try:
        doc = json.loads(marker.read_bytes())
        files = doc["files"]
        for entry in files:
            path = safe_join(folder, entry["path"])
            if not path.is_file() or path.stat().st_size != int(entry["size"]):
                raise IncompleteError(
                    f"{label} 不完整：{entry['path']} 缺失或大小不对。请重新运行上一步",
                    f"{label} is incomplete: {entry['path']} is missing or has the wrong size; run the previous step again")
    except (ValueError, KeyError, TypeError) as exc:
        raise IncompleteError(f"{label} 的完成标记已损坏", f"the completion marker of {label} is damaged: {exc}") from exc
    return doc


def is_complete(folder: Path) -> bool:
    try:
        read_marker(folder)
        return True
    except (IncompleteError, UnsafePathError):
        return False


def remove_tree(path: Path) -> None:
    """Remove a folder we wrote (leftovers of an interrupted run)."""
    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
