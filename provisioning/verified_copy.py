"""Copying files from a stick into a content store, hashes checked on the way.

A content pack may be many gigabytes of video, and a technician waits for it on
site, so this is the hot path of a USB import. Each file is read once into a
reused, page-aligned buffer: every block goes to sha256 and to a temporary file
in the store's ``.incoming`` folder. Four files are copied at once, so reading,
hashing (hashlib releases the GIL for large buffers) and writing overlap on two
cores, and the stick is asked to read ahead (``POSIX_FADV_WILLNEED``) while a
block is hashed and written.

The temporary files are written with ``O_DIRECT`` where the filesystem allows it:
the bytes go from the buffer to the disk without a second copy into the page cache
(measured: the page-cache copy and its write-back were the import's largest CPU
cost and most of its variance), and a big import does not evict the library the
device is serving. Where ``O_DIRECT`` is refused the write is buffered and pushed
towards the disk every few megabytes. The stick's pages are dropped once read.

Durability is batched rather than paid per file: once every file is verified,
one ``syncfs`` makes all their bytes (and, for direct writes, their sizes and
extents) durable, then they are renamed to their real names and a second
``syncfs`` makes the names durable. A crash or a pulled stick therefore never
leaves a half file under a real name (the store's rule), and the cost is two
journal commits instead of two per file (plus two per ``COMMIT_BYTES`` copied, so
a power cut in a long import loses at most that much work). Space is checked
before the first byte; files verified before a failure are still put in place, so
the next run carries on from there.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import mmap
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from hub_sync.core.blobstore import INCOMING, BlobStore
from hub_sync.core.const import MIB
from hub_sync.core.errors import CorruptBlobError, DiskFullError

from provisioning.errors import IncompleteError

BUFFER_BYTES = 4 * MIB
COPY_THREADS = 4  # measured: 4 beat 3 by ~10 % (more requests in flight), 6 did not beat 4
WRITEBACK_BYTES = 8 * MIB
COMMIT_BYTES = 1024 ** 3  # a crash loses at most this much copying; the next run skips what was committed
ALIGN = 4096  # O_DIRECT wants buffer, offset and length aligned to the logical block size (512 or 4096)
_READ_ERRORS = (errno.EIO, errno.ENODEV, errno.ENXIO, errno.ESTALE)  # what a pulled stick gives

_libc = ctypes.CDLL(None, use_errno=True)
_local = threading.local()


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


def _set_direct(fd: int, on: bool) -> bool:
    """Switch O_DIRECT on ``fd``; False when the filesystem refuses it."""
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, (flags | os.O_DIRECT) if on else (flags & ~os.O_DIRECT))
    except OSError:
        return False
    return on


def stage_one(store: BlobStore, item: Wanted, buffer_bytes: int = BUFFER_BYTES, direct: bool = True) -> Path | None:
    """Copy ``item`` to a temporary file in the store, verified; None if already held.

    CorruptBlobError when its bytes do not match the expected size or sha256
    (the temporary file is removed then). ``direct=False`` never uses O_DIRECT.
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
            _copy_hashing(fd_in, fd_out, item, buffer_bytes, direct and _set_direct(fd_out, True))
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
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


def _fill(fd: int, view: memoryview, name: str) -> int:
    """Read until ``view`` is full or the file ends (a short read mid-file would
    break the block alignment O_DIRECT needs); bytes read."""
    got = 0
    try:
        while got < len(view):
            n = os.readv(fd, [view[got:]])
            if n == 0:
                break
            got += n
    except OSError as exc:
        if exc.errno in _READ_ERRORS:
            raise IncompleteError(f"读取U盘上的文件 {name} 失败（U盘可能被拔出），已复制的内容保留。请插好U盘后重试",
                                  f"reading {name} from the stick failed (was it pulled out?); what was copied is "
                                  "kept, plug the stick in and try again") from exc
        raise
    return got


def _write_at(fd: int, data: memoryview, offset: int, direct: bool) -> bool:
    """Write all of ``data`` at ``offset``; whether O_DIRECT is still on afterwards."""
    done = 0
    while done < len(data):
        try:
            done += os.pwrite(fd, data[done:], offset + done)
        except OSError as exc:
            if not direct or exc.errno != errno.EINVAL:
                raise
            direct = _set_direct(fd, False)  # the filesystem took the flag but refuses the write: buffered
    return direct


def _buffer(size: int) -> memoryview:
    """This thread's copy buffer: mmap memory is page-aligned (O_DIRECT needs it), and
    reusing it spares faulting in fresh pages for every file. Never closed explicitly
    (slices may live on in a traceback); unmapped when the thread's locals go."""
    view = getattr(_local, "view", None)
    if view is None or len(view) != size:
        view = _local.view = memoryview(mmap.mmap(-1, size))
    return view


def _copy_hashing(fd_in: int, fd_out: int, item: Wanted, buffer_bytes: int, direct: bool) -> None:
    digest = hashlib.sha256()
    view = _buffer(max(ALIGN, buffer_bytes // ALIGN * ALIGN))
    size = len(view)
    total = flushed = 0
    os.posix_fadvise(fd_in, 0, 2 * size, os.POSIX_FADV_WILLNEED)
    while n := _fill(fd_in, view, item.source.name):
        if total + n > item.size:
            raise CorruptBlobError(f"文件 {item.source.name} 超过声明的大小，已拒收",
                                   f"file {item.source.name} is larger than declared; refused")
        # keep the stick busy reading the block after next while this one is hashed and written
        os.posix_fadvise(fd_in, total + 2 * size, size, os.POSIX_FADV_WILLNEED)
        digest.update(view[:n])
        padded = n
        if direct and n % ALIGN:  # the last block: write whole sectors, cut to size below
            padded = n + ALIGN - n % ALIGN
            view[n:padded] = bytes(padded - n)
        direct = _write_at(fd_out, view[:padded], total, direct)
        os.posix_fadvise(fd_in, total, n, os.POSIX_FADV_DONTNEED)  # the stick's pages are not needed again
        total += n
        if padded != n:
            os.ftruncate(fd_out, total)
        if not direct and total - flushed >= WRITEBACK_BYTES:  # start write-back now, not at syncfs
            os.posix_fadvise(fd_out, flushed, total - flushed, os.POSIX_FADV_DONTNEED)
            flushed = total
    if total != item.size or digest.hexdigest() != item.sha256:
        raise CorruptBlobError(
            f"U盘上的文件 {item.source.name} 校验失败（内容被改动或损坏），已拒收。请重新制作U盘",
            f"file {item.source.name} on the stick failed its hash check (changed or damaged); refused, "
            "make the stick again")


def _commit_all(store: BlobStore, staged: list[tuple[Wanted, Path]]) -> int:
    """Make the staged files durable, rename them into place, make the names durable;
    the bytes staged."""
    if not staged:
        return 0
    sync_filesystem(store.root)  # every byte on disk before any file gets its real name
    for item, tmp in staged:
        final = store.path_for(item.sha256)
        final.parent.mkdir(exist_ok=True)
        if final.exists():
            tmp.unlink(missing_ok=True)
        else:
            os.replace(tmp, final)
    sync_filesystem(store.root)  # the names are durable before the import says it is done
    return sum(item.size for item, _ in staged)


def import_verified(store: BlobStore, items: Iterable[Wanted], progress: Callable[[int], None] | None = None,
                    threads: int = COPY_THREADS, direct: bool = True, commit_bytes: int = COMMIT_BYTES) -> int:
    """Bring every missing item into ``store`` (hash-checked); return bytes copied.

    Disk space for all missing files is checked first. Verified files are committed
    (made durable, then renamed) each time ``commit_bytes`` have been staged and at
    the end, so a crash loses at most that much copying. On the first bad file the
    remaining copies stop and the error is raised, after the files verified so far
    are committed (correct content, addressed by hash; the next run skips them).
    ``direct=False`` writes through the page cache even where O_DIRECT works.
    """
    todo = [i for i in items if not store.has(i.sha256)]
    store.check_space(sum(i.size for i in todo))
    staged: list[tuple[Wanted, Path]] = []
    copied = 0
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="usb-copy") as pool:
        futures = [(item, pool.submit(stage_one, store, item, BUFFER_BYTES, direct)) for item in todo]
        index = 0
        try:
            for index, (item, fut) in enumerate(futures):  # noqa: B007 (the except below names the file that failed)
                tmp = fut.result()
                if tmp is not None:
                    staged.append((item, tmp))
                if progress is not None:
                    progress(item.size)
                if sum(i.size for i, _ in staged) >= commit_bytes:
                    copied += _commit_all(store, staged)
                    staged = []
        except BaseException:
            for _, fut in futures[index + 1:]:
                fut.cancel()
            for item, fut in futures[index + 1:]:  # let running copies finish, keep the good ones
                if not fut.cancelled():
                    try:
                        tmp = fut.result()
                    except BaseException:  # noqa: BLE001  (the first error is the one raised)
                        continue
                    if tmp is not None:
                        staged.append((item, tmp))
            _commit_all(store, staged)
            raise
    return copied + _commit_all(store, staged)
