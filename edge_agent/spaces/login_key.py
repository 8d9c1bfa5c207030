"""The device's login key: the secret of the keyed PIN and picture-password hashes.

32 random bytes in ``keys/login.key``, beside the device key
(``edge_agent.const.DEVICE_KEY_FILE``), mode 0600 in a 0700 folder, made on first
use and never sent anywhere. A PIN hash is HMAC-SHA256 under this key
(``auth.hash_pin``): someone who copies ``edge.db`` alone cannot test PINs
against it, while the appliance checks one in microseconds, so a class logging
in at once costs nothing. A stolen database *and* key still give up a 4-digit
PIN by trying all 10,000 values - as they would with any hash, Argon2 included;
what protects a low-entropy secret is the online throttle (``throttle.py``).

The key is found from the database it belongs to (the data folder holds both),
so every caller that has the appliance's ``db`` hashes with the same key. A
data folder restored without its ``keys/`` folder gets a new key: every PIN then
fails to verify (a warning says why) until the teacher gives new ones.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import threading
from pathlib import Path, PurePosixPath

import sqlite_utils

from hub_sync.core.atomic_file import fsync_dir

from edge_agent.const import DEVICE_KEY_FILE
from edge_agent.errors import ConfigError

LOGIN_KEY_FILE = str(PurePosixPath(DEVICE_KEY_FILE).parent / "login.key")
LOGIN_KEY_BYTES = 32

_keys: dict[str, bytes] = {}
_lock = threading.Lock()


def login_key(db: sqlite_utils.Database) -> bytes:
    """The login key of the data folder that holds ``db`` (made on first use)."""
    row = next((r for r in db.execute("pragma database_list").fetchall() if r[1] == "main"), None)
    if row is None or not row[2]:
        raise ConfigError("登录密钥需要磁盘上的数据库", "the login key needs a database file on disk")
    path = Path(row[2]).resolve().parent / LOGIN_KEY_FILE
    key = _keys.get(str(path))
    if key is None:
        with _lock:
            key = _keys.get(str(path)) or load_or_create(path)
            _keys[str(path)] = key
    return key


def load_or_create(path: Path) -> bytes:
    """Read the key at ``path``, or make it there (0600) if there is none yet.

    Several worker processes may start at once: the new key is written to a
    temporary file and linked to its name, which fails if another process got
    there first; then that process's key is read and used.
    """
    if not path.is_file():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".login.", suffix=".tmp")
        try:
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, secrets.token_bytes(LOGIN_KEY_BYTES))
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process made it first: use theirs
            fsync_dir(path.parent)
        finally:
            os.unlink(tmp)
    key = path.read_bytes()
    if len(key) != LOGIN_KEY_BYTES:
        raise ConfigError(f"登录密钥文件 {path} 已损坏，请删除它后让老师重置学生的 PIN",
                          f"login key {path} is damaged; remove it and have the teachers reset the students' PINs")
    return key
