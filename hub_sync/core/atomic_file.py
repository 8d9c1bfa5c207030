"""Writing a file so that a crash or a pulled stick never leaves half of it under its name.

The bytes go to a temporary name in the same folder, are fsynced, renamed over
the real name, and the folder is fsynced so the rename itself survives power
loss. On any error the temporary file is removed and the old file is untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


def fsync_dir(path: str | Path) -> None:
    """Make a rename or a new entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | Path, text: bool = False, file_mode: int | None = None,
                make_parents: bool = True) -> Iterator[IO]:
    """Yield a file to write; on success it replaces ``path`` atomically and durably.

    ``file_mode`` (e.g. 0o600 for keys) is set before a byte is written. With
    ``make_parents=False`` a missing folder is an error (a place a user typed).
    """
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if file_mode is not None:
            os.fchmod(fd, file_mode)
        with os.fdopen(fd, "w" if text else "wb", **({"encoding": "utf-8"} if text else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write(path: str | Path, data: bytes, file_mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    with atomic_open(path, file_mode=file_mode) as f:
        f.write(data)
