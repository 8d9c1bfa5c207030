"""A content-addressed file store: each file kept under its sha256.

Layout: ``<root>/ab/cdef...`` (the hex digest, split after two characters).
A file is written to ``<root>/.incoming/`` first, hashed while written, fsynced,
then renamed into place and the folder fsynced, so a crash never leaves a half
file under a real name. The store keeps a free-space reserve and refuses a write
that would break it before writing anything.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from hub_sync.core.atomic_file import fsync_dir
from hub_sync.core.const import COPY_CHUNK_BYTES, MIB
from hub_sync.core.errors import BlobNotFoundError as NotFoundError
from hub_sync.core.errors import CorruptBlobError, DataDirError, DiskFullError

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
INCOMING = ".incoming"
CORRUPT = ".corrupt"


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int


def is_sha256(text: str) -> bool:
    """True for a lowercase 64-character hex digest (the only valid blob name)."""
    return bool(_HEX64.match(text or ""))


class BlobStore:
    """Files by sha256 under ``root``, with a free-space reserve."""

    def __init__(self, root: str | Path, reserve_bytes: int = 512 * MIB) -> None:
        self.root = Path(root)
        self.reserve_bytes = reserve_bytes
        try:
            (self.root / INCOMING).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataDirError(
                f"无法创建内容目录 {self.root}：{exc.strerror}。请检查磁盘和权限",
                f"cannot create content folder {self.root}: {exc.strerror}; check the disk and permissions",
            ) from exc
        if not os.access(self.root, os.W_OK):
            raise DataDirError(
                f"内容目录 {self.root} 不可写。请检查权限或换一个数据目录",
                f"content folder {self.root} is not writable; check permissions or choose another data folder",
            )

    # -- paths ---------------------------------------------------------------
    def path_for(self, sha256: str) -> Path:
        """Where the blob lives. Refuses anything that is not a plain digest."""
        if not is_sha256(sha256):
            raise NotFoundError("找不到该文件", "no such file")
        return self.root / sha256[:2] / sha256[2:]

    def has(self, sha256: str) -> bool:
        return is_sha256(sha256) and self.path_for(sha256).is_file()

    def size_of(self, sha256: str) -> int:
        try:
            return self.path_for(sha256).stat().st_size
        except FileNotFoundError as exc:
            raise NotFoundError("找不到该文件", "no such file") from exc

    # -- space ---------------------------------------------------------------
    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    def check_space(self, incoming_bytes: int) -> None:
        """Raise DiskFullError if writing ``incoming_bytes`` would break the reserve."""
        free = self.free_bytes()
        if free - incoming_bytes < self.reserve_bytes:
            raise DiskFullError(
                f"磁盘空间不足：需要 {incoming_bytes / MIB:.1f} MB，可用 {free / MIB:.1f} MB，"
                f"须保留 {self.reserve_bytes / MIB:.0f} MB。请删除不用的资源或更换更大的磁盘",
                f"not enough disk space: need {incoming_bytes / MIB:.1f} MB, {free / MIB:.1f} MB free, "
                f"{self.reserve_bytes / MIB:.0f} MB must stay free; remove unused resources or use a larger disk",
                needed=incoming_bytes, free=free, reserve=self.reserve_bytes,
            )

    # -- writing -------------------------------------------------------------
    def put_stream(self, stream: BinaryIO, expected_sha256: str | None = None, size_hint: int | None = None,
                   max_bytes: int | None = None) -> StoredBlob:
        """Store the bytes of ``stream``; verify ``expected_sha256`` if given.

        Nothing appears under a real name unless the whole stream was written,
        synced and (when given) matched the expected hash.
        """
        if size_hint is not None:
            self.check_space(size_hint)
        digest = hashlib.sha256()
        size = 0
        try:
            fd, tmp_name = tempfile.mkstemp(dir=self.root / INCOMING, prefix="blob-")
        except OSError as exc:
            raise _write_error(exc, self.root) from exc
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(COPY_CHUNK_BYTES):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise CorruptBlobError(
                            f"文件超过声明的大小 {max_bytes} 字节，已拒收",
                            f"file is larger than its declared {max_bytes} bytes; refused",
                        )
                    if size_hint is None and size % (64 * MIB) < len(chunk):
                        self.check_space(64 * MIB)
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            if expected_sha256 is not None and sha != expected_sha256:
                raise CorruptBlobError(
                    f"文件校验失败：sha256 应为 {expected_sha256[:12]}…，实为 {sha[:12]}…",
                    f"file failed its check: sha256 should be {expected_sha256[:12]}…, is {sha[:12]}…",
                )
            self._commit(tmp, sha)
            return StoredBlob(sha, size)
        except OSError as exc:
            raise _write_error(exc, self.root) from exc
        finally:
            tmp.unlink(missing_ok=True)

    def put_bytes(self, data: bytes, expected_sha256: str | None = None) -> StoredBlob:
        """Store ``data`` (checked against ``expected_sha256`` when given)."""
        return self.put_stream(io.BytesIO(data), expected_sha256, size_hint=len(data))

    def put_file(self, path: str | Path, expected_sha256: str | None = None) -> StoredBlob:
        """Copy a file from anywhere into the store."""
        path = Path(path)
        with path.open("rb") as src:
            return self.put_stream(src, expected_sha256, size_hint=path.stat().st_size)

    def adopt(self, path: Path, sha256: str) -> None:
        """Move an already-verified file (on the same filesystem) into place."""
        self._commit(path, sha256)

    def adopt_many(self, files: list[tuple[Path, str]]) -> None:
        """``adopt`` for many files: each touched folder is fsynced once, after all
        the renames (a first sync of thousands of small files is otherwise mostly fsync)."""
        touched = set()
        for path, sha256 in files:
            final = self.path_for(sha256)
            final.parent.mkdir(exist_ok=True)
            if not final.exists():
                os.replace(path, final)
                touched.add(final.parent)
        for folder in sorted(touched):
            fsync_dir(folder)

    def _commit(self, tmp: Path, sha: str) -> None:
        final = self.path_for(sha)
        final.parent.mkdir(exist_ok=True)
        if final.exists():
            # same content already stored: a no-op (a decayed copy is moved aside by
            # quarantine(), after which the name is free for fresh bytes)
            return
        os.replace(tmp, final)
        fsync_dir(final.parent)

    def quarantine(self, sha256: str) -> Path | None:
        """Move a damaged blob out of the store into ``.corrupt/`` (kept for the
        technician); ``has()`` is then False, so the next sync fetches it again."""
        source = self.path_for(sha256)
        target = self.root / CORRUPT / sha256
        target.parent.mkdir(exist_ok=True)
        try:
            os.replace(source, target)
        except FileNotFoundError:
            return None
        fsync_dir(source.parent)
        return target

    # -- reading and checking -------------------------------------------------
    def open(self, sha256: str) -> BinaryIO:
        try:
            return self.path_for(sha256).open("rb")
        except FileNotFoundError as exc:
            raise NotFoundError("找不到该文件", "no such file") from exc

    def verify(self, sha256: str) -> bool:
        """Re-hash a stored blob; True when its bytes still match its name."""
        digest = hashlib.sha256()
        with self.open(sha256) as f:
            while chunk := f.read(COPY_CHUNK_BYTES):
                digest.update(chunk)
        return digest.hexdigest() == sha256

    def remove(self, sha256: str) -> None:
        self.path_for(sha256).unlink(missing_ok=True)

    def __iter__(self) -> Iterator[str]:
        for sub in self.root.iterdir():
            if len(sub.name) == 2 and sub.is_dir():
                for f in sub.iterdir():
                    if is_sha256(sub.name + f.name):
                        yield sub.name + f.name

    def clean_incoming(self) -> int:
        """Remove leftovers of interrupted writes; return how many."""
        count = 0
        for f in (self.root / INCOMING).iterdir():
            f.unlink(missing_ok=True)
            count += 1
        return count


def _write_error(exc: OSError, root: Path) -> Exception:
    """The store's own error for a failed write (disk full, read-only), else ``exc``."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError("磁盘已满，导入未完成，已有内容未受影响。请删除不用的资源或更换更大的磁盘",
                             "disk is full; the import stopped and nothing stored was changed; "
                             "remove unused resources or use a larger disk")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return DataDirError(f"内容目录 {root} 不可写：{exc.strerror}。请检查磁盘和权限",
                            f"content folder {root} is not writable: {exc.strerror}; check the disk and permissions")
    return exc
