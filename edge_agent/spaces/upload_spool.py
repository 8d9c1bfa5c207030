"""An uploaded file on its way into the store: written to disk while it is hashed,
never held whole in memory.

A hand-in or a teacher's upload may be ``max_upload_mb`` (200 MB) large, and a class
may send several at once: reading each into a ``bytes`` would hold all of them in the
worker's memory. ``spool`` copies the request's file part in chunks into the blob
store's ``.incoming/`` folder (the same file system, so keeping it is a rename),
hashing and counting as it goes and refusing past ``max_bytes`` without reading
further. The checks (size, type from the first bytes, quota) then look at the
``Spooled`` file; ``put`` moves it into the store under its hash; ``discard`` drops
it (the store's ``clean_incoming`` removes what a killed worker left).

Callers holding small ``bytes`` (tests, imports) use ``Spooled.of_bytes``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from hub_sync.core.blobstore import INCOMING, BlobStore, StoredBlob

from edge_agent.const import MIB
from edge_agent.spaces.errors import TooLargeError

CHUNK_BYTES = 1024 * 1024
HEAD_BYTES = 64 * 1024  # what type sniffing looks at (filetype reads the first 8 KiB)


@dataclass
class Spooled:
    """One uploaded file: on disk at ``path`` (or in memory as ``data`` for small callers)."""

    name: str
    size: int
    sha256: str
    head: bytes
    path: Path | None = None
    data: bytes | None = None

    @classmethod
    def of_bytes(cls, name: str, data: bytes) -> "Spooled":
        return cls(name, len(data), hashlib.sha256(data).hexdigest(), data[:HEAD_BYTES], data=data)

    @property
    def complete_head(self) -> bool:
        """Whether ``head`` is the whole file (so a text check may read all of it)."""
        return self.size <= len(self.head)

    def read(self, limit: int) -> bytes:
        """The whole file, for the few kinds parsed whole (an exercise set): at most ``limit`` bytes."""
        if self.size > limit:
            raise TooLargeError(f"文件太大（超过 {limit // MIB} MB）", f"file too large (over {limit // MIB} MB)")
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()

    def put(self, store: BlobStore) -> StoredBlob:
        """Keep the file in the store under its hash (a rename; a no-op if the store has it)."""
        if self.data is not None:
            return store.put_bytes(self.data, self.sha256)
        assert self.path is not None
        store.adopt(self.path, self.sha256)
        self.discard()  # adopt() leaves it when the blob was already stored
        return StoredBlob(self.sha256, self.size)

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def spool(store: BlobStore, name: str, stream: BinaryIO, max_bytes: int) -> Spooled:
    """Copy ``stream`` into ``store``'s incoming folder while hashing it; TooLargeError
    (nothing kept) as soon as it passes ``max_bytes``."""
    digest, size, head = hashlib.sha256(), 0, b""
    fd, tmp = tempfile.mkstemp(dir=store.root / INCOMING, prefix="upload-")
    path = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise TooLargeError(f"文件太大（超过 {max_bytes // MIB} MB），请压缩后再上传",
                                        f"file too large (over {max_bytes // MIB} MB); make it smaller and try again")
                if len(head) < HEAD_BYTES:
                    head += chunk[:HEAD_BYTES - len(head)]
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Spooled(name, size, digest.hexdigest(), head, path=path)


def as_spooled(name: str, data: "bytes | Spooled") -> Spooled:
    """``data`` as a Spooled file (bytes from a test or an import are wrapped)."""
    return data if isinstance(data, Spooled) else Spooled.of_bytes(name, data)
