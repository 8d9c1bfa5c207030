"""The database copy taken before a new version migrates it, and its restore.

SQLite's online backup (``sqlite3.Connection.backup``) copies every database of
the data folder (``*.db``) page by page into ``<firmware root>/backup/``; each
copy is written under a temporary name, synced and renamed, then ``done`` is
written, so a copy that exists with ``done`` is whole. Restoring writes the copy
back over the database through the same API: one transaction on the database,
so a restore cut short leaves it as it was and is simply done again.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from hub_sync.core.atomic_file import atomic_write, fsync_dir

BACKUP_DIR = "backup"
DONE = "done"


def databases(data_dir: Path) -> list[Path]:
    """The data folder's SQLite databases."""
    return sorted(p for p in Path(data_dir).glob("*.db") if p.is_file())


def _copy(src: Path, dest: Path) -> None:
    source = sqlite3.connect(src)
    target = sqlite3.connect(dest)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def take_backup(root: Path, data_dir: Path) -> list[str]:
    """Copy every database of ``data_dir`` into ``root/backup``; return their names."""
    folder = Path(root) / BACKUP_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DONE).unlink(missing_ok=True)
    for old in folder.glob("*.db*"):
        old.unlink()
    names = []
    for db in databases(data_dir):
        tmp = folder / f".{db.name}.tmp"
        tmp.unlink(missing_ok=True)
        _copy(db, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, folder / db.name)
        names.append(db.name)
    fsync_dir(folder)
    atomic_write(folder / DONE, "\n".join(names).encode())
    return names


def has_backup(root: Path) -> bool:
    return (Path(root) / BACKUP_DIR / DONE).is_file()


def restore_backup(root: Path, data_dir: Path) -> list[str]:
    """Write the whole backup back over the databases of ``data_dir``; return their names.
    Databases the new version created (not in the backup) are removed."""
    folder = Path(root) / BACKUP_DIR
    names = [n for n in (folder / DONE).read_text("utf-8").splitlines() if n]
    for db in databases(data_dir):
        if db.name not in names:
            for extra in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
                extra.unlink(missing_ok=True)
    for name in names:
        _copy(folder / name, Path(data_dir) / name)
    return names


def integrity_ok(db: Path) -> bool:
    """``PRAGMA integrity_check`` says ok."""
    con = sqlite3.connect(db)
    try:
        return con.execute("pragma integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()
