"""Private files: what holds personal data or secrets is readable by the service's
own user only, on the appliance and on the hub.

Databases (with their ``-wal`` and ``-shm``) and private keys are files 0600 in
folders 0700. New ones are made so (``sqlite_db.open_db``, ``keys.write_private``);
a data folder found looser (made by an older version, copied, restored from a
backup) is tightened when the appliance or the hub opens it (``tighten_tree``).
A folder on a filesystem without Unix modes (a FAT stick) is left as it is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterable

__all__ = ["PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "private_dir", "private_file", "tighten_tree"]

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(path: str | Path) -> Path:
    """Make ``path`` (and missing parents) a folder only its owner can enter; returns it."""
    path = Path(path)
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    _chmod(path, PRIVATE_DIR_MODE)
    return path


def private_file(path: str | Path) -> None:
    """Mode 0600 for an existing file (nothing if it is missing)."""
    _chmod(Path(path), PRIVATE_FILE_MODE)


def tighten_tree(folders: Iterable[str | Path]) -> None:
    """Every existing folder in ``folders`` and below becomes 0700, every file 0600.
    Symbolic links are not followed (a link must not make us chmod outside)."""
    for top in folders:
        top = Path(top)
        if top.is_symlink() or not top.is_dir():
            continue
        _chmod(top, PRIVATE_DIR_MODE)
        for root, dirs, files in os.walk(top, followlinks=False):
            for name in dirs:
                d = Path(root) / name
                if not d.is_symlink():
                    _chmod(d, PRIVATE_DIR_MODE)
            for name in files:
                f = Path(root) / name
                if not f.is_symlink():
                    _chmod(f, PRIVATE_FILE_MODE)


def _chmod(path: Path, mode: int) -> None:
    try:
        if stat.S_IMODE(path.lstat().st_mode) != mode:
            os.chmod(path, mode, follow_symlinks=False)
    except FileNotFoundError:
        pass
    except (PermissionError, NotImplementedError):
        pass  # not ours to change (another owner, or a filesystem without modes)
