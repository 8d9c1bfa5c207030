"""Partly received offered files, kept so that a cut upload resumes where it stopped.

A device sends an offered file with ``Content-Range: bytes START-END/TOTAL``. The hub
appends what arrives to ``H/offer-parts/<device hash>-<sha256>.part`` (0600 in a 0700
folder), synced to disk as it goes, also when the link drops mid-body; the next upload
starts at the size of that part (``offset``), which the hub tells the device. When the
part is whole it is checked against the SHA-256 and moved into the store; a part that
does not match is deleted, and the device starts again from 0.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from typing import BinaryIO

from werkzeug.exceptions import ClientDisconnected

from hub_sync.core.blobstore import BlobStore
from hub_sync.core.errors import ReplayError
from hub_sync.core.file_modes import private_dir

__all__ = ["OfferParts", "PartOffsetError", "PARTS_DIR"]

PARTS_DIR = "offer-parts"
CHUNK_BYTES = 1024 * 1024


class PartOffsetError(ReplayError):
    """The upload does not start where the hub's part ends (or another upload of it is running);
    ``details["offset"]``: where to start."""

    code = "offset"


class OfferParts:
    """The partly received offered files of one hub."""

    def __init__(self, data_dir: Path, store: BlobStore) -> None:
        self.root = Path(data_dir) / PARTS_DIR
        self.store = store

    def _path(self, device_id: str, sha256: str) -> Path:
        device = hashlib.sha256(device_id.encode("utf-8")).hexdigest()[:16]  # never a path from the wire
        return self.root / f"{device}-{sha256}.part"

    def offset(self, device_id: str, sha256: str) -> int:
        """How many bytes of this file the hub already holds from this device."""
        path = self._path(device_id, sha256)
        return path.stat().st_size if path.exists() else 0

    def append(self, device_id: str, sha256: str, stream: BinaryIO, start: int, count: int) -> tuple[int, bool]:
        """Append up to ``count`` bytes of ``stream`` at ``start``; returns (bytes now held, whether
        the body was complete). ``PartOffsetError`` if ``start`` is not where the part ends, or
        another upload of the part is running (one writer at a time: an exclusive lock).

        A dropped link keeps what arrived (synced): the next upload resumes after it."""
        private_dir(self.root)
        path = self._path(device_id, sha256)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        received, complete = 0, True
        with os.fdopen(fd, "ab") as out:
            try:
                fcntl.flock(out.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise PartOffsetError("这个文件正在上传，请稍后再试", "this file is being uploaded already; try again shortly",
                                      offset=os.fstat(out.fileno()).st_size) from None
            held = os.fstat(out.fileno()).st_size
            if held != start:
                if held == 0:  # made by this very open: leave nothing behind
                    path.unlink(missing_ok=True)
                raise PartOffsetError(f"应从第 {held} 字节继续上传", f"resume the upload at byte {held}", offset=held)
            try:
                while received < count and (chunk := stream.read(min(CHUNK_BYTES, count - received))):
                    out.write(chunk)
                    received += len(chunk)
            except ClientDisconnected:
                complete = False
            out.flush()
            os.fsync(out.fileno())
        return path.stat().st_size, complete and received == count

    def finish(self, device_id: str, sha256: str) -> None:
        """Move a whole part into the store, hash-checked; a wrong one is deleted
        (``BlobStore.put_file`` raises ``CorruptBlobError``)."""
        path = self._path(device_id, sha256)
        try:
            self.store.put_file(path, expected_sha256=sha256)
        finally:
            path.unlink(missing_ok=True)

    def drop(self, device_id: str, sha256: str) -> None:
        self._path(device_id, sha256).unlink(missing_ok=True)
