"""Copying files from a stick into a content store, hashes checked on the way.

A content pack may be many gigabytes of video, and a technician waits for it on
site, so this is the hot path of a USB import. Each file is read once: every
block goes to sha256 and to the temporary file in the store's ``.incoming``
folder, and only a file whose hash and size match what the signed metadata says
is renamed into place. Two files are copied at once: reading, hashing (hashlib
releases the GIL for large buffers) and writing then overlap, and one thread's
fsync does not stall the other's copy. Space is checked before the first byte.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Wanted:
    """One file to bring into the store: where it is on the stick and what it must be."""

    source: Path
    sha256: str
    size: int


def copy_one(store: BlobStore, item: Wanted, buffer_bytes: int = BUFFER_BYTES) -> int:
    """Copy ``item`` into ``store`` if missing; return bytes copied (0 if already held).

    CorruptBlobError when its bytes do not match the expected size or sha256;
    nothing appears in the store then.
    """
    if store.has(item.sha256):
        return 0
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
            os.fsync(fd_out)
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
        store.adopt(Path(tmp), item.sha256)
        Path(tmp).unlink(missing_ok=True)  # adopt leaves it when the blob appeared meanwhile
        return item.size
    finally:
        os.close(fd_in)


def _copy_hashing(fd_in: int, fd_out: int, item: Wanted, buffer_bytes: int) -> None:
    digest = hashlib.sha256()
    buf = bytearray(buffer_bytes)
    view = memoryview(buf)
    total = 0
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
    if total != item.size or digest.hexdigest() != item.sha256:
        raise CorruptBlobError(
            f"U盘上的文件 {item.source.name} 校验失败（内容被改动或损坏），已拒收。请重新制作U盘",
            f"file {item.source.name} on the stick failed its hash check (changed or damaged); refused, "
            "make the stick again")


def import_verified(store: BlobStore, items: Iterable[Wanted], progress: Callable[[int], None] | None = None,
                    threads: int = COPY_THREADS) -> int:
    """Bring every missing item into ``store`` (hash-checked); return bytes copied.

    Disk space for all missing files is checked first; on the first bad file the
    remaining copies stop and the error is raised (files already verified stay:
    they are correct content, addressed by hash, and the next run skips them).
    """
    todo = [i for i in items if not store.has(i.sha256)]
    store.check_space(sum(i.size for i in todo))
    copied = 0
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="usb-copy") as pool:
        futures = [pool.submit(copy_one, store, item) for item in todo]
        try:
            for fut in futures:
                n = fut.result()
                copied += n
                if progress is not None:
                    progress(n)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    return copied
