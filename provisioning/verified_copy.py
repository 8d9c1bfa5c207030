"""Copying files from a stick into a content store, hashes checked on the way.

A content pack may be many gigabytes of video, and a technician waits for it on
site, so this is the hot path of a USB import. Each file is read once: every
block goes to sha256 and to a temporary file in the store's ``.incoming``
folder. Two files are copied at once: reading, hashing (hashlib releases the GIL
for large buffers) and writing overlap. Written data is pushed towards the disk
every few megabytes (``posix_fadvise(DONTNEED)`` starts write-back and keeps a big
import from evicting the library being served).

Durability is batched rather than paid per file: once every file is verified,
one ``syncfs`` makes all their bytes durable, then they are renamed to their
real names and a second ``syncfs`` makes the names durable. A crash therefore
never leaves a half file under a real name (the store's rule), and the cost is
two journal commits instead of two per file. Space is checked before the first
byte; files verified before a failure are still put in place, so the next run
carries on from there.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from hub_sync.blobstore import INCOMING, BlobStore
from hub_sync.errors import CorruptBlobError, DiskFullError

BUFFER_BYTES = 4 * 1024 * 1024
COPY_THREADS = 2
WRITEBACK_BYTES = 8 * 1024 * 1024

_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class Wanted:
    """One file to bring into the store: where it is on the stick and what it must be."""

    source: Path
    sha256: str
    size: int


def sync_filesystem(path: Path) -> None:
    """Flush every dirty page and journal entry of the filesystem holding ``path`` (Linux syncfs)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)


def stage_one(store: BlobStore, item: Wanted, buffer_bytes: int = BUFFER_BYTES) -> Path | None:
    """Copy ``item`` to a temporary file in the store, verified; None if already held.

    CorruptBlobError when its bytes do not match the expected size or sha256
    (the temporary file is removed then).
    """
    if store.has(item.sha256):
        return None
    try:  # never follow a symlink on a stick: it could point anywhere on the device
        fd_in = os.open(item.source, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise CorruptBlobError(f"U盘上的文件 {item.source.name} 无法读取或是符号链接，已拒收",
                               f"file {item.source.name} on the stick is unreadable or a symbolic link; refused") from exc
    try:
        if os.fstat(fd_in).st_size != item.size:
            raise CorruptBlobError(
                f"U盘上的文件 {item.source.name} 大小不对（应为 {item.size} 字节），已拒收。请重新制作U盘",
                f"file {item.source.name} on the stick has the wrong size (should be {item.size} bytes); refused, "
                "make the stick again")
        os.posix_fadvise(fd_in, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        fd_out, tmp = tempfile.mkstemp(dir=store.root / INCOMING, prefix="usb-")
        try:
            _copy_hashing(fd_in, fd_out, item, buffer_bytes)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            if exc.errno == 28:  # ENOSPC
                raise DiskFullError("磁盘已满，导入未完成，已有内容未受影响",
                                    "disk is full; the import stopped and nothing stored was changed") from exc
            raise
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        finally:
            os.close(fd_out)
        return Path(tmp)
    finally:
        os.close(fd_in)


def _copy_hashing(fd_in: int, fd_out: int, item: Wanted, buffer_bytes: int) -> None:
    digest = hashlib.sha256()
    buf = bytearray(buffer_bytes)
    view = memoryview(buf)
    total = flushed = 0
    while n := os.readv(fd_in, [buf]):
        total += n
        if total > item.size:
            raise CorruptBlobError(f"文件 {item.source.name} 超过声明的大小，已拒收",
                                   f"file {item.source.name} is larger than declared; refused")
        chunk = view[:n]
        digest.update(chunk)
        written = 0
        while written < n:
            written += os.write(fd_out, chunk[written:])
        if total - flushed >= WRITEBACK_BYTES:
            os.posix_fadvise(fd_out, flushed, total - flushed, os.POSIX_FADV_DONTNEED)
            flushed = total
    if total != item.size or digest.hexdigest() != item.sha256:
        raise CorruptBlobError(
            f"U盘上的文件 {item.source.name} 校验失败（内容被改动或损坏），已拒收。请重新制作U盘",
            f"file {item.source.name} on the stick failed its hash check (changed or damaged); refused, "
            "make the stick again")


def _commit_all(store: BlobStore, staged: list[tuple[Wanted, Path]]) -> None:
    """Make the staged files durable, rename them into place, make the names durable."""
    if not staged:
        return
    sync_filesystem(store.root)
    for item, tmp in staged:
        final = store.path_for(item.sha256)
        final.parent.mkdir(exist_ok=True)
        if final.exists():
            tmp.unlink(missing_ok=True)
        else:
            os.replace(tmp, final)
    sync_filesystem(store.root)


def import_verified(store: BlobStore, items: Iterable[Wanted], progress: Callable[[int], None] | None = None,
                    threads: int = COPY_THREADS) -> int:
    """Bring every missing item into ``store`` (hash-checked); return bytes copied.

    Disk space for all missing files is checked first; on the first bad file the
    remaining copies stop and the error is raised, after the files verified so
    far are committed (correct content, addressed by hash; the next run skips them).
    """
    todo = [i for i in items if not store.has(i.sha256)]
    store.check_space(sum(i.size for i in todo))
    staged: list[tuple[Wanted, Path]] = []
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="usb-copy") as pool:
        futures = [(item, pool.submit(stage_one, store, item)) for item in todo]
        try:
            for item, fut in futures:
                tmp = fut.result()
                if tmp is not None:
                    staged.append((item, tmp))
                if progress is not None:
                    progress(item.size)
        except BaseException:
            for _, fut in futures:
                fut.cancel()
            for _, fut in futures:  # let running copies finish, keep the good ones
                if not fut.cancelled():
                    try:
                        tmp = fut.result()
                    except BaseException:  # noqa: BLE001  (the first error is the one raised)
                        continue
                    if tmp is not None and all(t != tmp for _, t in staged):
                        staged.append((next(i for i, f in futures if f is fut), tmp))
            _commit_all(store, staged)
            raise
    _commit_all(store, staged)
    return sum(item.size for item, _ in staged)
